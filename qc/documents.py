"""Certificate of analysis of a released lot: the specification version, each test with its method, limit,
result and pass/fail, the release signature (printed name, time, meaning), page x of y, audit chain head."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches.models import CMLot, LotStatus
from batches.selectors import lot_get
from cmlims import roles
from cmlims.documents.models import DocumentJob
from cmlims.documents.registry import BuildContext, BuiltDocument, register_builder
from cmlims.documents.reports import Report, Section, render_report
from cmlims.documents.services import document_job_request
from cmlims.exceptions import Conflict
from qc.models import ResultStatus

COA = "certificate_of_analysis"
# A CoA certifies a released lot; after a recall it may still be fetched for the record.
COA_STATUSES = (LotStatus.RELEASED, LotStatus.RECALLED, LotStatus.EXPIRED)


def _may_get_coa(user, params: dict) -> None:
    roles.require_role(user, (roles.QC_OFFICER, roles.SHIPPING_COORDINATOR), "Getting a certificate of analysis")


def _coa_conditions(lot: CMLot) -> list[dict]:
    conditions = []
    if lot.voided_at is not None:
        conditions.append({"code": "lot_voided", "detail": f"lot {lot.lot_number} is voided"})
    if lot.status not in COA_STATUSES:
        conditions.append({"code": "lot_not_released", "detail": f"lot {lot.lot_number} is {lot.status}"})
    return conditions


def lot_coa_request(*, lot: CMLot, actor) -> DocumentJob:
    """Request the CoA of a released lot (409 otherwise)."""
    _may_get_coa(actor, {})
    with transaction.atomic():
        lot = lot_get(lot.lot_number)  # as stored now, not as the caller last read it
        conditions = _coa_conditions(lot)
        if conditions:
            raise Conflict(f"No certificate of analysis for lot {lot.lot_number}: it is not released.",
                           code="coa_refused", conditions=conditions)
        return document_job_request(kind=COA, params={"lot_number": lot.lot_number}, actor=actor, subject=lot)


def _utc(value: dt.datetime | None) -> str:
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if value else "—"


def build_coa(ctx: BuildContext) -> BuiltDocument:
    report, lot = coa_report(ctx)
    ctx.progress(80)
    return BuiltDocument(render_report(report), f"coa-{lot.lot_number}.pdf", "application/pdf")


def coa_report(ctx: BuildContext) -> tuple[Report, CMLot]:
    """The certificate's content read from the record (the benchmark's floor renders it without the ORM, B5)."""
    from cmlims.esign.services import signature_current_statuses, signed_content_note
    from qc.selectors import counting_results, lot_results_read, lot_signoff_signatures, lot_specification_items
    from qc.units import display

    lot = CMLot.objects.select_related("product").get(pk=ctx.subject_id)
    conditions = _coa_conditions(lot)
    if conditions:
        raise Conflict("; ".join(c["detail"] for c in conditions), code="coa_refused", conditions=conditions)
    spec, items = lot_specification_items(lot)  # one query for both
    everything = lot_results_read(lot, items=items)  # one read for the table, the set-aside results, the check
    results = counting_results(lot, everything)
    rows, failing = [], []
    for item in items:
        result = results.get(item.pk)
        if result is None:
            value, verdict, tested = "not tested", "—", "—"
        else:
            value = result.qualitative_value or f"{display(result.value)} {item.unit}".strip()
            verdict = "pass" if result.passed else "FAIL"
            tested = f"{result.tested_at:%Y-%m-%d}"
        if result is not None and not result.passed:
            failing.append(len(rows))
        rows.append([item.test, item.method or "—", item.criterion, value, verdict, tested,
                     "mandatory" if item.mandatory else "information"])
    # An invalidated result is not on the certificate's table, but the certificate says it was set aside.
    invalidated = [f"{r.spec_item.test} = {r.value_entered} {r.unit_entered}".strip()
                   + f" (tested {r.tested_at:%Y-%m-%d}): invalidated by {r.invalidation.printed_name} on "
                   f"{_utc(r.invalidated_at)}: {r.invalidation_reason}"
                   for r in sorted(everything, key=lambda r: r.pk) if r.status == ResultStatus.INVALIDATED]
    signatures = list(lot_signoff_signatures(lot))
    release = [s for s in signatures if s.meaning == "released"]
    # The printout shows "changed after signing" like the API and the admin do (a signed field edited since).
    statuses = signature_current_statuses([(lot, s) for s in signatures])
    sections = [
        Section("Product and lot", pairs=[
            ("Manufacturer", settings.CMLIMS_MANUFACTURER),
            ("Product", lot.product.name), ("GTIN", lot.product.gtin), ("Lot", lot.lot_number),
            ("Expiry", f"{lot.expiry:%Y-%m-%d}" if lot.expiry else "—"), ("Status", lot.get_status_display()),
            ("Specification", f"{spec.title} version {spec.version}" if spec else "none in force at pooling"),
        ]),
        Section("Results", table_header=["Test", "Method", "Limit", "Result", "Pass/fail", "Tested", "Item"],
                table_rows=rows, highlighted_rows=failing,
                column_widths=[0.2, 0.16, 0.16, 0.16, 0.09, 0.11, 0.12],
                paragraphs=["Invalidated results (not counted): " + "; ".join(invalidated)] if invalidated else []),
        Section("Release", table_header=["Printed name", "Meaning", "Signed", "Reason", "Signed content"],
                table_rows=[[s.printed_name, s.meaning, _utc(s.signed_at), s.reason or "—",
                             signed_content_note(statuses[s.pk])] for s in signatures],
                highlighted_rows=[i for i, s in enumerate(signatures)
                                  if statuses[s.pk] and statuses[s.pk].changed_after_signing],
                paragraphs=[] if release else ["No release signature."]),
    ]
    if lot.status == LotStatus.RECALLED:
        sections.insert(0, Section("RECALLED", paragraphs=[f"Lot {lot.lot_number} has been recalled."]))
    report = Report(
        title="Certificate of analysis", subtitle=f"{lot.product.name} — lot {lot.lot_number}",
        document_id=f"CoA {lot.lot_number}", chain_head=ctx.chain_head,
        generated_by=ctx.requested_by.get_full_name() or ctx.requested_by.get_username(),
        generated_at=timezone.now(), sections=sections,
    )
    return report, lot


register_builder(COA, build_coa, "reports", _may_get_coa, title="certificate of analysis")
