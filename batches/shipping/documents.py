"""Shipping documents through the core job system: the shipping label (4×6 in, GS1-128 SSCC, declared here
once and rendered by the core label engine to PDF and ZPL) and the packing list (vials, lots, expiry,
consignee, CoA references, temperature chart once logged).

Discovered by ``cmlims.documents`` (autodiscover of each app's ``documents`` module). Builders run in the
worker from ids; the request side (``shipment_document_request``) checks the shipment's state first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches.shipping.charts import temperature_chart_png
from batches.shipping.locks import shipment_lock
from batches.shipping.models import Shipment, ShipmentStatus
from batches.shipping.selectors import log_readings, shipment_current_log, shipment_get, shipment_lots
from cmlims import roles
from cmlims.documents import labels
from cmlims.documents.builtin import GS1_EXAMPLE_SSCC, TEST_TEXT
from cmlims.documents.labels import PT, Box, LabelTemplate, Lines, Symbol, Text
from cmlims.documents.models import DocumentJob, JobStatus, LabelKind
from cmlims.documents.registry import BuildContext, BuiltDocument, LabelPrintSpec, register_builder
from cmlims.documents.reports import Report, Section, render_report
from cmlims.documents.selectors import label_print_exists, label_reconciliation
from cmlims.documents.services import document_job_request, label_disposition_record
from cmlims.exceptions import Conflict, field_error
from cmlims.printing.services import printer_for_labels

SHIPPING_LABEL = "shipping_label"
PACKING_LIST = "packing_list"
COA_KIND = "certificate_of_analysis"  # the CoA builder's kind (QC); referenced, not generated, here
SHIPMENT_TYPE = "shipping.shipment"


@dataclass(frozen=True)
class ShippingLabel:
    sscc: str
    ship_from: Sequence[str]
    ship_to: Sequence[str]
    contents: str
    count: int
    lot: str
    expiry: dt.date | None
    handling: str
    temperature: str
    reference: str = ""  # shipment number
    copies: int = 1

    @property
    def key(self) -> str:
        return self.sscc

    @property
    def lot_text(self) -> str:
        return f"LOT {self.lot}" + (f"   EXP {self.expiry:%Y-%m-%d}" if self.expiry else "")

    def ais(self) -> list[tuple[str, str]]:
        return [("00", self.sscc)]


def _shipping_rows() -> tuple[Text, ...]:
    """The consignment block, one row every 11 pt so the sixth (the shipment number, only when there is one)
    stays above the rule at 266.4 pt (at 13 pt, version 1 struck it through)."""
    rows = ("CONTENTS {contents}", "COUNT {count}", "{lot_text}", "TRANSPORT {temperature}", "{handling}",
            "SHIPMENT {reference}")
    return tuple(Text(8 * PT, (206 + i * 11) * PT, row, 10, 272 * PT, bold=row.startswith("TRANSPORT"),
                      when="reference" if "{reference}" in row else "") for i, row in enumerate(rows))


# 4 x 6 in, drawn in points: from, to, consignment, then the SSCC as GS1-128 with its text under it.
SHIPPING = labels.label_template_register(LabelTemplate("shipping", "2", 101.6, 152.4, ShippingLabel, layout=(
    Text(8 * PT, 16 * PT, "SHIP FROM", 7, 144 * PT, bold=True),
    Lines(8 * PT, 27 * PT, "ship_from", 9 * PT, 5, 8, 132 * PT),
    Box(0, 78 * PT, 101.6, 0, PT),
    Text(8 * PT, 92 * PT, "SHIP TO", 8, 272 * PT, bold=True),
    Lines(8 * PT, 108 * PT, "ship_to", 13 * PT, 6, 12, 272 * PT),
    Box(0, 190 * PT, 101.6, 0, PT),
    *_shipping_rows(),
    Box(0, 266.4 * PT, 101.6, 0, PT),
    Text(8 * PT, 280.4 * PT, "SSCC", 8, 272 * PT, bold=True),
    Symbol(12 * PT, 295.2 * PT, 264 * PT, kind="gs1_128", height=93.6 * PT),
    Text(0, 406.8 * PT, "{hri}", 11, 101.6, center=True),
), sample=lambda n: ShippingLabel(GS1_EXAMPLE_SSCC, ["cmlims", TEST_TEXT], [TEST_TEXT, "Do not ship"], TEST_TEXT, 0,
                                  "TEST", None, "Printer test", "n/a", reference=f"T{n}")))


def _shipment_from(params: dict) -> Shipment:
    try:
        return shipment_get(int(params["shipment"]))
    except (KeyError, TypeError, ValueError):
        raise field_error("shipment", "give the shipment id") from None


def _temperature_text(s: Shipment) -> str:
    return f"{s.transport_temperature_min_c} to {s.transport_temperature_max_c} °C"


def _handling(s: Shipment) -> str:
    coolant = s.get_coolant_display() if s.coolant else ""
    return "HANDLE WITH CARE — DO NOT X-RAY" + (f" — {coolant}" if coolant else "")


def shipping_label_data(s: Shipment, *, copies: int = 1) -> ShippingLabel:
    lots = shipment_lots(s)
    lot_text = lots[0]["lot_number"] + (f" +{len(lots) - 1} more" if len(lots) > 1 else "") if lots else "-"
    return ShippingLabel(
        sscc=s.sscc,
        ship_from=[settings.CMLIMS_MANUFACTURER],
        ship_to=s.consignee.address_lines,
        contents=s.product.name,
        count=len(s.live_allocations),
        lot=lot_text,
        expiry=min((lot["expiry"] for lot in lots if lot["expiry"]), default=None),
        handling=_handling(s),
        temperature=_temperature_text(s),
        reference=s.reference or "",
        copies=copies,
    )


def build_shipping_label(ctx: BuildContext) -> BuiltDocument:
    s = _shipment_from(ctx.params)
    output_format = ctx.params.get("format", "pdf")
    data = shipping_label_data(s, copies=int(ctx.params.get("copies", 1)))
    template = SHIPPING
    spec = LabelPrintSpec(
        template=template.name, template_version=template.version, kind=LabelKind.SHIPPING,
        output_format=output_format, subject_type=SHIPMENT_TYPE, subject_id=str(s.pk), item_key=s.sscc,
        payload={"sscc": s.sscc, "reference": s.reference, "consignee": s.consignee.name, "count": data.count,
                 "lot": data.lot, "expiry": data.expiry.isoformat() if data.expiry else None,
                 "temperature": data.temperature},
        copies=data.copies, reprint_reason=ctx.params.get("reprint_reason", ""),
    )
    if output_format == "zpl":
        return BuiltDocument(labels.render_zpl(template, [data]).encode(), f"{s.reference}-label.zpl",
                             "application/zpl", [spec])
    content = labels.render_pdf(template, [data], title=f"Shipping label {s.reference}")
    return BuiltDocument(content, f"{s.reference}-label.pdf", "application/pdf", [spec])


def _coa_references(lot_numbers: list[str]) -> dict[str, str]:
    """The newest issued CoA job per lot (document id and SHA-256), or a note that none is issued yet."""
    from batches.models import CMLot

    ids = dict(CMLot.objects.filter(lot_number__in=lot_numbers).values_list("pk", "lot_number"))
    found: dict[str, str] = {}
    jobs = (DocumentJob.objects.filter(kind=COA_KIND, status=JobStatus.DONE, subject_type="batches.cmlot",
                                       subject_id__in=[str(pk) for pk in ids])
            .order_by("subject_id", "-finished_at"))
    for job in jobs:
        found.setdefault(ids[int(job.subject_id)], f"CoA document {job.pk}, SHA-256 {job.sha256[:16]}…")
    return {n: found.get(n, "CoA not issued yet") for n in lot_numbers}


def packing_list_pdf(s: Shipment, *, generated_by: str, chain_head, chart_png: bytes | None) -> bytes:
    lots = shipment_lots(s)
    coa = _coa_references([lot["lot_number"] for lot in lots])
    log = shipment_current_log(s)
    sections = [
        Section("Shipment", pairs=[
            ("Ship to", ", ".join(s.consignee.address_lines)),
            ("Contact", f"{s.consignee.contact_name} {s.consignee.contact_phone} {s.consignee.contact_email}"),
            ("Product", f"{s.product.name} (GTIN {s.product.gtin}); transport {_temperature_text(s)}, "
                        f"{s.transport_excursion_allowed_minutes} min outside allowed"),
            ("Courier", f"{s.courier or '-'}, tracking {s.tracking_number or '-'}"),
            ("Pack-out", f"{s.get_shipper_type_display() or '-'}, {s.get_coolant_display() or '-'}, "
                         f"logger {s.logger_serial or '-'}"),
        ]),
        Section("Lots", table_header=["Lot", "Expiry", "Vials", "Certificate of analysis"],
                table_rows=[[lot["lot_number"], str(lot["expiry"] or "-"), str(lot["count"]), coa[lot["lot_number"]]]
                            for lot in lots], column_widths=[0.2, 0.14, 0.08, 0.58]),
        Section(f"Vials ({len(s.live_allocations)})", table_header=["#", "Serial", "Lot", "Expiry", "Status"],
                table_rows=[[str(i), a.vial.serial, a.vial.lot.lot_number, str(a.vial.lot.expiry or "-"),
                             a.vial.status] for i, a in enumerate(s.live_allocations, start=1)],
                column_widths=[0.07, 0.3, 0.25, 0.19, 0.19]),
        Section("Chain of custody", table_header=["When (UTC)", "Event", "Recorded by", "Party"],
                table_rows=[[f"{e.occurred_at:%Y-%m-%d %H:%M}", e.get_kind_display(), e.recorded_by.get_username(),
                             e.party] for e in s.custody], column_widths=[0.2, 0.2, 0.2, 0.4]),
    ]
    if log is not None:
        verdict = ("EXCURSION, " + log.investigation.number if log.excursion and log.investigation
                   else "no excursion")
        sections.append(Section("Temperature log", paragraphs=[
            f"{log.file_name} (SHA-256 {log.file_sha256[:16]}…): {log.sample_count} samples "
            f"{log.first_at:%Y-%m-%d %H:%M} to {log.last_at:%Y-%m-%d %H:%M} UTC, min {log.min_c} °C, "
            f"max {log.max_c} °C, {log.minutes_outside} min outside {log.range_min_c} to "
            f"{log.range_max_c} °C (allowed {log.allowed_minutes}) — {verdict}"], image_png=chart_png))
    # The core layout (escaping, "Page x of y", document id and audit chain head on every page).
    return render_report(Report(
        title=f"Packing list {s.reference or ''}", document_id=f"Packing list {s.reference}",
        subtitle=f"SSCC (00) {s.sscc} — status {s.get_status_display()}", chain_head=chain_head,
        generated_by=generated_by, generated_at=timezone.now(), sections=sections))


def build_packing_list(ctx: BuildContext) -> BuiltDocument:
    s = _shipment_from(ctx.params)
    ctx.progress(10)
    log = shipment_current_log(s)
    chart = None
    if log is not None:
        chart = temperature_chart_png(log_readings(log), low_c=log.range_min_c, high_c=log.range_max_c,
                                      title=f"{s.reference} logger {log.file_name}")
    ctx.progress(50)
    who = ctx.requested_by.get_full_name() or ctx.requested_by.get_username()
    content = packing_list_pdf(s, generated_by=who, chain_head=ctx.chain_head, chart_png=chart)
    return BuiltDocument(content, f"{s.reference}-packing-list.pdf", "application/pdf")


def _may_print_shipping_label(user, params: dict) -> None:
    roles.require_role(user, roles.SHIPPING_COORDINATOR, "Printing a shipping label")


def _may_get_packing_list(user, params: dict) -> None:
    roles.require_role(user, (roles.SHIPPING_COORDINATOR, roles.QC_OFFICER), "Generating a packing list")


register_builder(SHIPPING_LABEL, build_shipping_label, "labels", _may_print_shipping_label,
                 title="shipping label (SSCC)")
register_builder(PACKING_LIST, build_packing_list, "reports", _may_get_packing_list, title="packing list")


# --- request side --------------------------------------------------------------------------------------


@transaction.atomic
def shipment_document_request(
    *, shipment: Shipment, kind: str, actor, output_format: str | None = None, copies: int = 1,
    reprint_reason: str = "", printer: int | None = None,
) -> DocumentJob:
    """Ask for the shipping label or the packing list of a shipment that holds vials (202 job).

    A second shipping label for the same SSCC is a reprint and needs a reason (rule 7).
    """
    pk = shipment.pk if isinstance(shipment, Shipment) else shipment
    s = shipment_get(pk)
    if kind not in (SHIPPING_LABEL, PACKING_LIST):
        raise field_error("kind", f"must be {SHIPPING_LABEL} or {PACKING_LIST}")
    conditions = []
    if s.status == ShipmentStatus.CANCELLED:
        conditions.append({"code": "shipment_status", "detail": f"{s} is cancelled"})
    if not s.live_allocations:
        conditions.append({"code": "no_vials", "detail": f"{s} holds no vials"})
    if conditions:
        raise Conflict(f"No documents for {s}.", code="invalid_state", conditions=conditions)
    params: dict = {"shipment": s.pk}
    chosen = None
    if kind == SHIPPING_LABEL and printer is not None:  # the printer's format and stock (400 / 409 otherwise)
        chosen, output_format = printer_for_labels(printer_id=printer, output_format=output_format,
                                                   width_mm=SHIPPING.width_mm, height_mm=SHIPPING.height_mm)
        params["printer"] = chosen.pk
    if kind == SHIPPING_LABEL:
        output_format = output_format or "pdf"
        if output_format not in ("pdf", "zpl"):
            raise field_error("format", "must be pdf or zpl")
        if not isinstance(copies, int) or not 1 <= copies <= 10:
            raise field_error("copies", "must be 1 to 10")
        printed = label_print_exists(subject_type=SHIPMENT_TYPE, subject_id=str(s.pk),
                                     template="shipping", kind=LabelKind.SHIPPING, item_keys=[s.sscc])
        if printed and not (reprint_reason or "").strip():
            raise field_error("reprint_reason", "the shipping label was printed before: a reprint needs a reason")
        params.update(format=output_format, copies=copies, reprint_reason=(reprint_reason or "").strip())
    return document_job_request(kind=kind, params=params, actor=actor, subject=s, printer=chosen)


# --- label accountability ------------------------------------------------------------------------------


def shipment_label_reconciliation(s: Shipment):
    """The shipment's shipping labels issued, each used (on the box), destroyed or returned (211.125)."""
    return label_reconciliation(subject_type=SHIPMENT_TYPE, subject_id=str(s.pk), expected_keys={"shipping": [s.sscc]})


def shipment_label_disposition_record(*, shipment: Shipment | int, actor, disposition, count, reason) -> list:
    """Record ``count`` shipping labels of the shipment destroyed or returned (shipping coordinator)."""
    roles.require_role(actor, roles.SHIPPING_COORDINATOR, "Accounting for shipping labels")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise field_error("count", "must be a whole number of labels, at least 1")
    with transaction.atomic():
        s = shipment_lock(shipment)
        return label_disposition_record(subject_type=SHIPMENT_TYPE, subject_id=str(s.pk), subject_repr=str(s),
                                        template=SHIPPING.name, kind=LabelKind.SHIPPING, disposition=disposition,
                                        labels=[s.sscc] * count, reason=reason, actor=actor)
