"""QC officers' start page (cmlims.home): lots waiting for results, for approval and for sign-off, each lot
with its open points; results waiting for approval (never the officer's own).

Selectors only (reads); a fixed number of queries whatever the number of lots or results."""

from __future__ import annotations

from django.db.models import Count, Q

from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.home import HomeRow, home_section_add
from qc.models import QCResult, ResultStatus

LOTS_SHOWN = 8
PENDING = Q(qc_results__status=ResultStatus.VALID, qc_results__approved_at__isnull=True)
FAILING = Q(qc_results__status=ResultStatus.VALID, qc_results__passed=False, qc_results__retests__isnull=True)


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


def qc_lot_rows(user) -> list[HomeRow]:
    """Three buckets (results, approval, sign-off) counted from one annotated query, then the oldest lots."""
    lots = list(CMLot.objects.filter(status__in=(LotStatus.PACKAGED, LotStatus.QC_COMPLETE), voided_at__isnull=True)
                .annotate(pending=Count("qc_results", filter=PENDING, distinct=True),
                          failing=Count("qc_results", filter=FAILING, distinct=True))
                .order_by("status_changed_at", "id"))
    results = [lot for lot in lots if lot.status == LotStatus.PACKAGED and not lot.pending]
    approval = [lot for lot in lots if lot.status == LotStatus.PACKAGED and lot.pending]
    signoff = [lot for lot in lots if lot.status == LotStatus.QC_COMPLETE]
    rows = [
        HomeRow(label="lots waiting for results", count=len(results), changelist="batches.cmlot",
                query={"status__exact": LotStatus.PACKAGED}, detail="packaged (quarantine), no result to approve"),
        HomeRow(label="lots waiting for result approval", count=len(approval), changelist="qc.qcresult",
                query={"status__exact": ResultStatus.VALID, "approved_at__isnull": "True"}),
        HomeRow(label="lots waiting for sign-off", count=len(signoff), changelist="batches.cmlot",
                query={"status__exact": LotStatus.QC_COMPLETE}, detail="QC complete: review and sign"),
    ]
    for lot in lots[:LOTS_SHOWN]:
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
