"""Reads of investigations."""

from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from cmlims.exceptions import NotFound
from cmlims.investigations.models import Investigation, Kind, Status


def investigations_on(subjects: Iterable[tuple[type[models.Model], Iterable]], *, open_only: bool = False):
    """Investigations whose subject is any of the given records: [(Model, [pks]), ...] in one query."""
    condition = Q(pk__in=[])
    for model, ids in subjects:
        ids = [str(i) for i in ids]
        if ids:
            condition |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in_texts=ids)
    qs = Investigation.objects.filter(condition).select_related("content_type", "opened_by", "closed_by",
                                                               "closing_signature__signer")
    if open_only:
        qs = qs.filter(status=Status.OPEN)
    return qs.order_by("opened_at", "id")


def investigation_list():
    return Investigation.objects.select_related("content_type", "opened_by", "closed_by", "closing_signature__signer")


def investigation_get(pk: int) -> Investigation:
    """One investigation with its subject type and people; NotFound (404) if there is none."""
    investigation = investigation_list().filter(pk=pk).first()
    if investigation is None:
        raise NotFound(f"investigation {pk} does not exist")
    return investigation


def deviations_open():
    """Open deviations, oldest first, with their subject type and opener (one query): the QC start page's list."""
    return (Investigation.objects.filter(kind=Kind.DEVIATION, status=Status.OPEN)
            .select_related("content_type", "opened_by").order_by("opened_at", "id"))
