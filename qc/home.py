"""QC officers' start page (cmlims.home): lots waiting for results, for approval and for sign-off, each lot
with its open points; results waiting for approval (never the officer's own).

Selectors only (reads); a fixed number of queries whatever the number of lots or results."""

from __future__ import annotations

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.home import HomeRow, home_section_add
from qc.models import QCResult, ResultStatus

LOTS_SHOWN = 8


def lot_open_points(lot: CMLot) -> list[str]:
    """What the officer still has to settle on ``lot`` (annotated by ``qc_lot_rows``), in words."""
    points = []
    if lot.pending:
        points.append(f"{lot.pending} result(s) to approve")
    if lot.failing:
        points.append(f"{lot.failing} failing result(s) without a retest")
    if lot.on_hold:
        points.append("on hold")
    if lot.status == LotStatus.PACKAGED and not lot.pending:
        points.append("results to enter or the move to QC complete")
    return points


def _result_count(**conditions) -> Coalesce:
    # Correlated subqueries: evaluated only for the lots shown, served by the results' (lot, status) index.
    counted = (QCResult.objects.filter(lot=OuterRef("pk"), status=ResultStatus.VALID, **conditions)
               .order_by().values("lot").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def qc_lot_rows(user) -> list[HomeRow]:
    """Three buckets (results, approval, sign-off) counted by one aggregate query, then the oldest lots (two
    queries whatever the number of lots in QC: a ten-year site has thousands packaged, B10)."""
    in_qc = (CMLot.objects.filter(status__in=(LotStatus.PACKAGED, LotStatus.QC_COMPLETE), voided_at__isnull=True)
             .annotate(has_pending=Exists(QCResult.objects.filter(lot=OuterRef("pk"), status=ResultStatus.VALID,
                                                                  approved_at__isnull=True))))
    packaged = Q(status=LotStatus.PACKAGED)
    # "waiting for results" is packaged minus "waiting for approval": a second filter on has_pending would make
    # PostgreSQL run the EXISTS twice for every lot in QC.
    buckets = in_qc.aggregate(packaged=Count("pk", filter=packaged),
                              approval=Count("pk", filter=packaged & Q(has_pending=True)),
                              signoff=Count("pk", filter=Q(status=LotStatus.QC_COMPLETE)))
    lots = list(in_qc.annotate(pending=_result_count(approved_at__isnull=True),
                               failing=_result_count(passed=False, retests__isnull=True))
                .order_by("status_changed_at", "id")[:LOTS_SHOWN])
    approval, signoff = buckets["approval"], buckets["signoff"]
    results = buckets["packaged"] - approval
    rows = [
        HomeRow(label="lots waiting for results", count=results, changelist="batches.cmlot",
                query={"status__exact": LotStatus.PACKAGED}, detail="packaged (quarantine), no result to approve"),
        HomeRow(label="lots waiting for result approval", count=approval, changelist="qc.qcresult",
                query={"status__exact": ResultStatus.VALID, "approved_at__isnull": "True"}),
        HomeRow(label="lots waiting for sign-off", count=signoff, changelist="batches.cmlot",
                query={"status__exact": LotStatus.QC_COMPLETE}, detail="QC complete: review and sign"),
    ]
    for lot in lots:
        points = lot_open_points(lot)
        rows.append(HomeRow(label=f"{lot.lot_number} ({lot.get_status_display()})", count=len(points),
                            changelist="batches.cmlot", query={"lot_number": lot.lot_number},
                            detail=("open: " + "; ".join(points)) if points else "ready for sign-off"))
    return rows


def approval_rows(user) -> list[HomeRow]:
    """Valid results nobody approved yet that ``user`` neither entered nor analysed (four eyes)."""
    count = (QCResult.objects.filter(status=ResultStatus.VALID, approved_at__isnull=True)
             .exclude(entered_by=user).exclude(analyst=user).count())
    return [HomeRow(label="results waiting for your approval", count=count, changelist="qc.qcresult",
                    query={"status__exact": ResultStatus.VALID, "approved_at__isnull": "True"},
                    detail="not entered or analysed by you")]


home_section_add(key="qc-lots", title="Lots in QC", roles=[roles.QC_OFFICER], rows=qc_lot_rows, order=10)
home_section_add(key="qc-approve", title="Results to approve", roles=[roles.QC_OFFICER], rows=approval_rows,
                 order=20)
