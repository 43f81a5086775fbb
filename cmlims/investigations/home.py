"""Start-page sections (cmlims.home) of investigations: open deviations (lab staff), open investigations by
age (QC officers). One aggregate query each, whatever the number of investigations."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Q
from django.utils import timezone

from cmlims import roles
from cmlims.home import HomeRow, home_section_add
from cmlims.investigations.models import Investigation, Kind, Status

CHANGELIST = "investigations.investigation"
AGES = ((7, "opened in the last 7 days"), (30, "open 7 to 30 days"), (None, "open more than 30 days"))


def open_by_age_rows(user) -> list[HomeRow]:
    """Open investigations in three age bands, each linked to the list filtered by its opening dates."""
    now = timezone.now()
    bounds, lower = [], None
    for days, label in AGES:
        start = now - dt.timedelta(days=days) if days else None
        bounds.append((label, start, lower))
        lower = start
    condition = {}
    for i, (_label, start, end) in enumerate(bounds):
        q = Q()
        if start is not None:
            q &= Q(opened_at__gte=start)
        if end is not None:
            q &= Q(opened_at__lt=end)
        condition[f"band{i}"] = Count("id", filter=q)
    counts = Investigation.objects.filter(status=Status.OPEN).aggregate(**condition)
    rows = []
    for i, (label, start, end) in enumerate(bounds):
        query = {"status__exact": Status.OPEN}
        if start is not None:
            query["opened_at__gte"] = start.isoformat()
        if end is not None:
            query["opened_at__lt"] = end.isoformat()
        rows.append(HomeRow(label=label, count=counts[f"band{i}"], changelist=CHANGELIST, query=query))
    return rows


def open_deviation_rows(user) -> list[HomeRow]:
    count = Investigation.objects.filter(kind=Kind.DEVIATION, status=Status.OPEN).count()
    return [HomeRow(label="open deviations", count=count, changelist=CHANGELIST,
                    query={"kind__exact": Kind.DEVIATION, "status__exact": Status.OPEN})]


home_section_add(key="lab-deviations", title="Deviations", roles=[roles.LAB_STAFF], rows=open_deviation_rows,
                 order=30)
home_section_add(key="qc-investigations", title="Open investigations by age", roles=[roles.QC_OFFICER],
                 rows=open_by_age_rows, order=30)
