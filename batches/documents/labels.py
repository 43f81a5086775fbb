"""Labels of a lot: vial and carton labels (quarantine / final) and the request services behind the
label endpoints and admin actions. The vial and carton labels are declared here once (their data and one
layout each) and registered with the core label engine, which renders them to PDF and ZPL.

Rules: quarantine labels — lab staff, any lot with vials that is not rejected (they say QUARANTINE);
final labels — shipping coordinator, rule 4 (released, unexpired, not on hold, vial available), checked
at request time (409) and again when the job runs (the lot may have been put on hold meanwhile).
A reprint (an item that already has a label of this template and kind) needs a reason (400 without).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches.locks import lot_lock
from batches.models import CMLot, LotStatus, Vial, VialStatus
from batches.selectors import lot_rule4_conditions
from cmlims import roles
from cmlims.audit import object_type_of, to_jsonable
from cmlims.documents import labels
from cmlims.documents.builtin import GS1_EXAMPLE_GTIN, TEST_TEXT
from cmlims.documents.labels import Box, LabelTemplate, Symbol, Text
from cmlims.documents.models import DocumentJob, LabelKind
from cmlims.documents.registry import BuildContext, BuiltDocument, LabelPrintSpec, register_builder
from cmlims.documents.selectors import label_print_exists, label_reconciliation
from cmlims.documents.services import document_job_request, label_disposition_record
from cmlims.documents.symbols import gs1_date
from cmlims.exceptions import Conflict, InvalidInput, field_error
from cmlims.printing.models import PrinterKind
from cmlims.printing.selectors import printer_get, printers_for_stock
from cmlims.printing.services import A4_MM, printer_for_labels

LOT_LABELS = "lot_labels"
LABEL_TEMPLATES = ("vial", "carton")
FORMATS = {"pdf": "application/pdf", "zpl": "application/zpl"}
MAX_COPIES = 10


# --- the labels: data and layout ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LotLabel:
    """What every label of a lot prints."""

    product_name: str
    gtin: str
    lot: str
    expiry: dt.date
    storage: str
    content: str
    manufacturer: str
    status: str = ""  # "QUARANTINE" until the lot is released
    copies: int = 1


@dataclass(frozen=True, kw_only=True)
class VialLabel(LotLabel):
    serial: str

    @property
    def key(self) -> str:
        return self.serial

    def ais(self) -> list[tuple[str, str]]:
        return [("01", self.gtin), ("17", gs1_date(self.expiry)), ("10", self.lot), ("21", self.serial)]


@dataclass(frozen=True, kw_only=True)
class CartonLabel(LotLabel):
    count: int
    carton: str = "1"  # carton number within the lot, the reconciliation key

    @property
    def key(self) -> str:
        return f"carton-{self.carton}"

    def ais(self) -> list[tuple[str, str]]:
        # (02)+(37): the carton holds `count` units of one GTIN.
        return [("02", self.gtin), ("37", str(self.count)), ("17", gs1_date(self.expiry)), ("10", self.lot)]


def _test_sample(label: type[LotLabel], **own: Any) -> LotLabel:
    """A printer test label: GS1's example GTIN, no product, TEST LABEL where the status goes."""
    return label(product_name="Printer test — not a product", gtin=GS1_EXAMPLE_GTIN, lot="TEST",
                 expiry=dt.date(2099, 12, 31), storage="Test print", content="Test print", manufacturer="cmlims",
                 status=TEST_TEXT, **own)


# 50 x 25 mm: the symbol left, the text right of it, the status boxed under the symbol (nothing else is there).
VIAL = labels.label_template_register(LabelTemplate("vial", "2", 50, 25, VialLabel, layout=(
    Symbol(2, 1.5, 17),
    Text(21, 4, "{product_name}", 7, 27.5, bold=True),
    Text(21, 7.4, "LOT {lot}", 6.5, 27.5),
    Text(21, 10.4, "SN {serial}", 6.5, 27.5),
    Text(21, 13.4, "EXP {expiry:%Y-%m-%d}", 6.5, 27.5),
    Text(21, 16.2, "{storage}", 5, 27.5),
    Text(21, 18.6, "{content}", 5, 27.5),
    Text(21, 21, "{manufacturer}", 4.5, 27.5),
    Text(2, 23.8, "{hri}", 4.2, 46),
    Box(2, 19, 17, 2.8, 0.6 * labels.PT, when="status"),
    Text(2, 21.1, "{status}", 6, 17, bold=True, center=True, when="status"),
), sample=lambda n: _test_sample(VialLabel, serial=f"T{n:06d}")))

# 100 x 70 mm: the name across the top, the symbol left with the status boxed above it, the text right.
CARTON = labels.label_template_register(LabelTemplate("carton", "2", 100, 70, CartonLabel, layout=(
    Text(5, 8, "{product_name}", 12, 90, bold=True),
    Symbol(5, 30, 30),
    Text(40, 18, "LOT {lot}", 10, 56),
    Text(40, 24, "EXP {expiry:%Y-%m-%d}", 10, 56),
    Text(40, 30, "CONTENTS {count} vials", 10, 56, bold=True),
    Text(40, 36, "CARTON {carton}", 8, 56),
    Text(40, 42, "{storage}", 8, 56),
    Text(40, 47, "{content}", 8, 56),
    Text(40, 52, "{manufacturer}", 7, 56),
    Text(5, 65, "{hri}", 7, 90),
    Box(5, 19, 30, 7, labels.PT, when="status"),
    Text(5, 24, "{status}", 11, 30, bold=True, center=True, when="status"),
), sample=lambda n: _test_sample(CartonLabel, count=1, carton=str(n))))


# --- rules --------------------------------------------------------------------------------------------


def lot_label_conditions(lot: CMLot, kind: str, *, today: dt.date) -> list[dict]:
    """Why labels of ``kind`` cannot be printed for ``lot`` now ([] = they can): final labels follow rule 4;
    quarantine labels need a lot that is neither voided, rejected nor released."""
    if kind != LabelKind.QUARANTINE:
        return lot_rule4_conditions(lot, today=today)
    conditions = []
    if lot.voided_at is not None:
        conditions.append({"code": "lot_voided", "detail": f"lot {lot.lot_number} is voided"})
    if lot.status == LotStatus.REJECTED:
        conditions.append({"code": "lot_rejected", "detail": f"lot {lot.lot_number} is rejected"})
    if lot.status == LotStatus.RELEASED:  # a released vial must not come out saying QUARANTINE
        conditions.append({"code": "lot_released", "detail": f"lot {lot.lot_number} is released: print final labels"})
    return conditions


def _select_vials(lot: CMLot, kind: str, serials: list[str] | None) -> list[Vial]:
    """The vials to label: the given serials (each must belong to the lot) or every eligible vial."""
    vials = lot.vials.filter(voided_at__isnull=True).order_by("sequence")
    if serials:
        chosen = {v.serial: v for v in vials.filter(serial__in=serials)}
        unknown = [s for s in serials if s not in chosen]
        if unknown:
            raise field_error("vials", f"not vials of lot {lot.lot_number}: {', '.join(unknown[:20])}")
        selected = [chosen[s] for s in dict.fromkeys(serials)]
    else:
        wanted = [VialStatus.AVAILABLE] if kind == LabelKind.FINAL else [VialStatus.AVAILABLE, VialStatus.ALLOCATED]
        selected = list(vials.filter(status__in=wanted))
    if kind == LabelKind.FINAL:
        refused = [{"serial": v.serial, "reason": f"vial is {v.status}"} for v in selected
                   if v.status != VialStatus.AVAILABLE]
        if refused:
            raise Conflict(f"{len(refused)} vial(s) cannot get a final label.", code="vials_refused", vials=refused)
    else:
        destroyed = [v.serial for v in selected if v.status == VialStatus.DESTROYED]
        if destroyed:
            raise field_error("vials", f"destroyed vials get no label: {', '.join(destroyed[:20])}")
    if not selected:
        raise field_error("vials", f"lot {lot.lot_number} has no vials to label")
    return selected


def lot_labels_params(
    *, template: Any, kind: Any, output_format: Any = None, vials: Any = None, reason: Any = "", copies: Any = 1,
    carton_size: Any = None, layout: Any = "page", printer: Any = None,
) -> dict[str, Any]:
    """Validate request input; 400 naming each bad field. With a printer, the format is the printer's."""
    errors: dict[str, list[str]] = {}
    if template not in LABEL_TEMPLATES:
        errors["template"] = [f"must be one of {', '.join(LABEL_TEMPLATES)}"]
    if kind not in (LabelKind.QUARANTINE, LabelKind.FINAL):
        errors["kind"] = ["must be quarantine or final"]
    if output_format not in FORMATS and not (printer is not None and output_format is None):
        errors["format"] = ["must be pdf or zpl"]
    if vials is not None and (not isinstance(vials, list) or not all(isinstance(s, str) and s for s in vials)):
        errors["vials"] = ["must be a list of vial serials"]
    if not isinstance(reason, str):
        errors["reason"] = ["must be text"]
    if not isinstance(copies, int) or isinstance(copies, bool) or not 1 <= copies <= MAX_COPIES:
        errors["copies"] = [f"must be a whole number from 1 to {MAX_COPIES}"]
    if carton_size is not None and (not isinstance(carton_size, int) or isinstance(carton_size, bool)
                                    or carton_size < 1):
        errors["carton_size"] = ["must be a whole number of vials per carton, at least 1"]
    if layout not in labels.LAYOUTS:
        errors["layout"] = [f"must be one of {', '.join(labels.LAYOUTS)}"]
    if errors:
        raise InvalidInput("Invalid label request.", fields=errors)
    params = {"template": template, "kind": str(kind), "format": output_format, "vials": vials or None,
              "reason": reason.strip(), "copies": copies, "carton_size": carton_size, "layout": layout}
    if printer is not None:  # enabled, takes this format, holds the template's stock (400 / 409 otherwise)
        tpl = labels.template_get(template)
        chosen, params["format"] = printer_for_labels(printer_id=printer, output_format=output_format,
                                                      width_mm=tpl.width_mm, height_mm=tpl.height_mm, layout=layout)
        params["printer"] = chosen.pk
    return params


def _may_print(user, params: dict) -> None:
    if params.get("kind") == LabelKind.FINAL:
        roles.require_role(user, roles.SHIPPING_COORDINATOR, "Printing final labels")
    else:
        roles.require_role(user, roles.LAB_STAFF, "Printing quarantine labels")


def _item_keys(template: str, vials: list[Vial], carton_size: int | None) -> list[str]:
    if template == "vial":
        return [v.serial for v in vials]
    size = carton_size or len(vials)
    return [f"carton-{n}" for n in range(1, math.ceil(len(vials) / size) + 1)]


def lot_labels_request(*, lot: CMLot, actor, **raw: Any) -> DocumentJob:
    """Check role, rules and reprints for a lot's labels, then create the job (202 on the API)."""
    params = lot_labels_params(**raw)
    _may_print(actor, params)
    with transaction.atomic():
        lot = lot_lock(lot)
        conditions = lot_label_conditions(lot, params["kind"], today=timezone.localdate())
        if conditions:
            raise Conflict(f"{params['kind'].capitalize()} labels cannot be printed for lot {lot.lot_number}.",
                           code="labels_refused", conditions=conditions)
        vials = _select_vials(lot, params["kind"], params["vials"])
        keys = _item_keys(params["template"], vials, params["carton_size"])
        already = label_print_exists(subject_type=object_type_of(CMLot), subject_id=str(lot.pk),
                                     template=params["template"], kind=params["kind"], item_keys=keys)
        if already and not params["reason"]:
            raise InvalidInput(
                f"{len(already)} label(s) were printed before; a reprint needs a reason.",
                fields={"reason": [f"required to reprint {', '.join(sorted(already)[:10])}"]},
            )
        params["vials"] = [v.serial for v in vials]  # the job prints exactly what was checked here
        params["lot_number"] = lot.lot_number
        params["reprints"] = sorted(already)
        return document_job_request(kind=LOT_LABELS, params=params, actor=actor, subject=lot,
                                    printer=printer_get(params["printer"]) if params.get("printer") else None)


# --- builder ------------------------------------------------------------------------------------------


def _storage_text(product) -> str:
    return f"Store at {product.storage_temperature_min_c} to {product.storage_temperature_max_c} °C"


def _content_text(product) -> str:
    return f"{product.nominal_fill_volume_ml.normalize()} mL fill, freeze-dried; reconstitute before use"


def build_lot_labels(ctx: BuildContext) -> BuiltDocument:
    p = ctx.params
    lot = CMLot.objects.select_related("product").get(pk=ctx.subject_id)
    conditions = lot_label_conditions(lot, p["kind"], today=timezone.localdate())
    if conditions:  # changed since the request: refuse rather than print a wrong label
        raise Conflict("; ".join(c["detail"] for c in conditions), code="labels_refused", conditions=conditions)
    vials = list(Vial.objects.filter(lot=lot, serial__in=p["vials"]).order_by("sequence"))
    if p["kind"] == LabelKind.FINAL:
        refused = [{"serial": v.serial, "reason": f"vial is {v.status}"} for v in vials
                   if v.status != VialStatus.AVAILABLE]
        if refused:
            raise Conflict(f"{len(refused)} vial(s) are no longer available.", code="vials_refused", vials=refused)
    product = lot.product
    status = labels.QUARANTINE if p["kind"] == LabelKind.QUARANTINE else ""
    common = {"product_name": product.name, "gtin": product.gtin, "lot": lot.lot_number, "expiry": lot.expiry,
              "storage": _storage_text(product), "content": _content_text(product),
              "manufacturer": settings.CMLIMS_MANUFACTURER, "status": status, "copies": p["copies"]}
    if lot.expiry is None:
        raise Conflict(f"lot {lot.lot_number} has no expiry date yet (set at packaging).", code="no_expiry")
    if p["template"] == "vial":
        items = [VialLabel(serial=v.serial, **common) for v in vials]
    else:
        size = p["carton_size"] or len(vials)
        chunks = [vials[i:i + size] for i in range(0, len(vials), size)]
        items = [CartonLabel(count=len(chunk), carton=str(n), **common) for n, chunk in enumerate(chunks, 1)]
    template = labels.template_get(p["template"])

    def progress(done: int, total: int) -> None:
        ctx.progress(done * 99 // total)

    name = f"{lot.lot_number}-{p['template']}-{p['kind']}-labels"
    if p["format"] == "zpl":
        content = labels.render_zpl(template, items, on_progress=progress).encode()
    else:
        content = labels.render_pdf(template, items, layout=p["layout"], title=name, on_progress=progress)
    reprints = set(p.get("reprints") or [])
    prints = [
        LabelPrintSpec(
            template=template.name, template_version=template.version, kind=p["kind"], output_format=p["format"],
            subject_type=ctx.subject_type, subject_id=ctx.subject_id, item_key=item.key,
            payload=to_jsonable(asdict(item)), copies=item.copies,
            reprint_reason=p["reason"] if item.key in reprints else "",
        )
        for item in items
    ]
    return BuiltDocument(content, f"{name}.{p['format']}", FORMATS[p["format"]], prints)


register_builder(LOT_LABELS, build_lot_labels, "labels", _may_print, title="lot labels")


# --- reconciliation -----------------------------------------------------------------------------------


def lot_label_reconciliation(lot: CMLot):
    """Vial and carton labels issued for the lot, each used, destroyed or returned (211.125/211.130); vial
    labels against the vials it shows (destroyed vials included: they were labelled)."""
    serials = lot.vials.filter(voided_at__isnull=True).values_list("serial", flat=True)
    return label_reconciliation(subject_type=object_type_of(CMLot), subject_id=str(lot.pk),
                                expected_keys={"vial": serials, "carton": None})


def lot_label_conditions_for_release(lot: CMLot) -> list[dict]:
    """``labels_unreconciled`` for each template and kind of the lot with labels unaccounted for."""
    return lot_label_reconciliation(lot).conditions(f"lot {lot.lot_number}")


def lot_label_disposition_record(*, lot: CMLot, actor, template: Any, kind: Any, disposition: Any, labels: Any,
                                 reason: Any) -> list:
    """Record destroyed or returned labels of the lot (who, how many, which, why): quarantine labels by lab
    staff, final labels by the shipping coordinator (whoever may print them accounts for them)."""
    errors: dict[str, list[str]] = {}
    if template not in LABEL_TEMPLATES:
        errors["template"] = [f"must be one of {', '.join(LABEL_TEMPLATES)}"]
    if kind not in (LabelKind.QUARANTINE, LabelKind.FINAL):
        errors["kind"] = ["must be quarantine or final"]
    if errors:
        raise InvalidInput("Invalid label disposition.", fields=errors)
    _may_print(actor, {"kind": kind})
    with transaction.atomic():
        lot = lot_lock(lot)  # one record at a time per lot: two people cannot destroy the same label twice
        return label_disposition_record(subject_type=object_type_of(CMLot), subject_id=str(lot.pk),
                                        subject_repr=f"lot {lot.lot_number}", template=template, kind=str(kind),
                                        disposition=disposition, labels=labels, reason=reason, actor=actor)


# --- what the lot admin prints ------------------------------------------------------------------------


def lot_unlabelled_serials(lot: CMLot, *, kind: str) -> list[str]:
    """Vials that could get a ``kind`` vial label and have none yet (the admin prints these; reprints,
    which need a reason, go through the API)."""
    statuses = [VialStatus.AVAILABLE] if kind == LabelKind.FINAL else [VialStatus.AVAILABLE, VialStatus.ALLOCATED]
    serials = list(lot.vials.filter(voided_at__isnull=True, status__in=statuses).order_by("sequence")
                   .values_list("serial", flat=True))
    done = label_print_exists(subject_type=object_type_of(CMLot), subject_id=str(lot.pk), template="vial",
                              kind=kind, item_keys=serials)
    return [s for s in serials if s not in done]


def label_layout_for(printer, template: str) -> str:
    """``a4`` for an office printer holding A4 sheets but not the label's own stock (the labels laid out on the
    sheet), otherwise ``page`` (one label a page)."""
    tpl = labels.template_get(template)
    if printer.pk in {p.pk for p in printers_for_stock(width_mm=tpl.width_mm, height_mm=tpl.height_mm)}:
        return "page"
    sheets = printers_for_stock(width_mm=float(A4_MM[0]), height_mm=float(A4_MM[1]))
    return "a4" if printer.kind == PrinterKind.IPP and printer.pk in {p.pk for p in sheets} else "page"


def lot_labels_page_request(*, lot: CMLot, actor, template: str, kind: str, destination: str, vials: list[str],
                            reason: str, copies: int, carton_size: int) -> DocumentJob:
    """The lot labels page's print. ``destination`` is a printer's id or ``download:pdf`` / ``download:zpl``;
    vial labels without serials and without a reprint reason are every vial without this label yet."""
    serials = vials
    if template == "vial" and not serials and not reason.strip():
        serials = lot_unlabelled_serials(lot, kind=kind)
        if not serials:
            raise field_error("vials", "every vial already has this label: name the vials to reprint, and a reason")
    printer = None if destination.startswith("download:") else printer_get(int(destination))
    return lot_labels_request(
        lot=lot, actor=actor, template=template, kind=kind,
        output_format=destination.split(":")[1] if printer is None else None, vials=serials or None,
        reason=reason, copies=copies, carton_size=carton_size if template == "carton" else None,
        layout=label_layout_for(printer, template) if printer else "page", printer=printer.pk if printer else None)


def lot_unlabelled_vial_labels_request(*, lot: CMLot, kind: str, actor, output_format: str = "pdf") -> DocumentJob:
    """Vial labels of ``kind`` (PDF, or ZPL for a Zebra) for every vial of the lot that has none yet (the role
    is checked first, so a user who may not print is told that rather than what is left to print)."""
    _may_print(actor, {"kind": kind})
    serials = lot_unlabelled_serials(lot, kind=kind)
    if not serials:
        raise InvalidInput("every vial already has this label; reprint through the API with a reason",
                           fields={"vials": ["nothing left to label"]})
    return lot_labels_request(lot=lot, actor=actor, template="vial", kind=kind,
                              output_format=output_format, vials=serials)
