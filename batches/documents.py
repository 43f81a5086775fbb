"""Documents of a lot: vial and carton labels (quarantine / final) and the request services behind the
label endpoints and admin actions. Builders hand plain label data to the core renderers.

Rules: quarantine labels — lab staff, any lot with vials that is not rejected (they say QUARANTINE);
final labels — shipping coordinator, rule 4 (released, unexpired, not on hold, vial available), checked
at request time (409) and again when the job runs (the lot may have been put on hold meanwhile).
A reprint (an item that already has a label of this template and kind) needs a reason (400 without).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches.locks import lot_lock
from batches.models import CMLot, LotStatus, Vial, VialStatus
from batches.selectors import lot_get, lot_rule4_conditions
from cmlims import roles
from cmlims.audit import object_type_of, to_jsonable
from cmlims.documents import labels
from cmlims.documents.models import DocumentJob, LabelKind
from cmlims.documents.registry import BuildContext, BuiltDocument, LabelPrintSpec, register_builder
from cmlims.documents.selectors import label_print_exists, label_reconciliation
from cmlims.documents.services import document_job_request
from cmlims.exceptions import Conflict, InvalidInput, field_error

LOT_LABELS = "lot_labels"
LABEL_TEMPLATES = ("vial", "carton")
FORMATS = {"pdf": "application/pdf", "zpl": "application/zpl"}
MAX_COPIES = 10


# --- rules --------------------------------------------------------------------------------------------


def lot_label_conditions(lot: CMLot, kind: str, *, today: dt.date) -> list[dict]:
    """Why labels of ``kind`` cannot be printed for ``lot`` now ([] = they can): final labels follow rule 4;
    quarantine labels only need a lot that is neither voided nor rejected."""
    if kind != LabelKind.QUARANTINE:
        return lot_rule4_conditions(lot, today=today)
    conditions = []
    if lot.voided_at is not None:
        conditions.append({"code": "lot_voided", "detail": f"lot {lot.lot_number} is voided"})
    if lot.status == LotStatus.REJECTED:
        conditions.append({"code": "lot_rejected", "detail": f"lot {lot.lot_number} is rejected"})
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
    *, template: Any, kind: Any, output_format: Any, vials: Any = None, reason: Any = "", copies: Any = 1,
    carton_size: Any = None, layout: Any = "page",
) -> dict[str, Any]:
    """Validate request input; 400 naming each bad field."""
    errors: dict[str, list[str]] = {}
    if template not in LABEL_TEMPLATES:
        errors["template"] = [f"must be one of {', '.join(LABEL_TEMPLATES)}"]
    if kind not in (LabelKind.QUARANTINE, LabelKind.FINAL):
        errors["kind"] = ["must be quarantine or final"]
    if output_format not in FORMATS:
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
    return {"template": template, "kind": str(kind), "format": output_format, "vials": vials or None,
            "reason": reason.strip(), "copies": copies, "carton_size": carton_size, "layout": layout}


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


def lot_labels_request(*, lot_number: str, actor, **raw: Any) -> DocumentJob:
    """Check role, rules and reprints for a lot's labels, then create the job (202 on the API)."""
    params = lot_labels_params(**raw)
    _may_print(actor, params)
    with transaction.atomic():
        lot = lot_lock(lot_number)
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
        return document_job_request(kind=LOT_LABELS, params=params, actor=actor, subject=lot)


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
        items = [labels.VialLabel(serial=v.serial, **common) for v in vials]
    else:
        size = p["carton_size"] or len(vials)
        chunks = [vials[i:i + size] for i in range(0, len(vials), size)]
        items = [labels.CartonLabel(count=len(chunk), carton=str(n), **common) for n, chunk in enumerate(chunks, 1)]
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
    """Vial labels issued for the lot against the vials it shows (destroyed vials included: they were labelled)."""
    serials = lot.vials.filter(voided_at__isnull=True).values_list("serial", flat=True)
    return label_reconciliation(subject_type=object_type_of(CMLot), subject_id=str(lot.pk), expected_keys=serials)


# --- batch record -------------------------------------------------------------------------------------

BATCH_RECORD = "batch_record"


def _may_read_batch_record(user, params: dict) -> None:
    roles.require_role(user, roles.QC_OFFICER, "Generating the batch record")


def lot_batch_record_request(*, lot_number: str, actor) -> DocumentJob:
    _may_read_batch_record(actor, {})
    with transaction.atomic():
        lot = lot_get(lot_number)
        if lot.voided_at is not None:
            raise Conflict(f"lot {lot.lot_number} is voided.", code="lot_voided",
                           conditions=[{"code": "lot_voided", "detail": lot.void_reason or "voided"}])
        return document_job_request(kind=BATCH_RECORD, params={"lot_number": lot.lot_number}, actor=actor,
                                    subject=lot)


def _fmt(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, dt.datetime):
        return f"{value.astimezone(dt.UTC) if timezone.is_aware(value) else value:%Y-%m-%d %H:%M} UTC"
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _change_text(changes: dict | None, limit: int = 8) -> str:
    """ "field: old → new" for the first ``limit`` fields of an audit entry."""
    parts = []
    for name, value in (changes or {}).items():
        if isinstance(value, list) and len(value) == 2:
            if value[0] in (None, "") and value[1] in (None, ""):
                continue  # an empty field of a new record says nothing
            parts.append(f"{name}: {_fmt(value[0])} → {_fmt(value[1])}")
        else:
            parts.append(f"{name}: {value}")
        if len(parts) == limit:
            break
    return "; ".join(parts)[:600]


def _person(user) -> str:
    return (user.get_full_name() or user.get_username()) if user else "—"


def build_batch_record(ctx: BuildContext) -> BuiltDocument:
    """Every step with who performed and verified it and when, quantities and yield, investigations,
    signatures and the lot's audit trail (entries changing an object after its first entry marked)."""
    from batches.selectors import lot_detail_queryset, lot_genealogy
    from cmlims.documents.reports import Report, Section, render_report
    from cmlims.esign.selectors import signatures_of
    from cmlims.esign.services import signature_current_statuses, signed_content_note
    from cmlims.investigations.selectors import investigations_on
    from cmlims.timeline import timeline_for

    lot = lot_detail_queryset().get(pk=ctx.subject_id)
    g = lot_genealogy(lot)
    ctx.progress(10)
    pr = g["processing"]
    sections = [
        Section("Lot", pairs=[
            ("Lot number", lot.lot_number), ("Product", f"{lot.product.name} (GTIN {lot.product.gtin})"),
            ("Status", lot.get_status_display() + (" — ON HOLD: " + lot.hold_reason if lot.on_hold else "")),
            ("Expiry", _fmt(lot.expiry)), ("Pooled", _fmt(lot.pooled_at)),
        ]),
        Section("Genealogy: donors and cell banks",
                table_header=["Donor", "Tissue", "Eligibility", "Consent", "Bank", "Kind", "Passage at freeze"],
                table_rows=[[b["donor"], next((d["tissue"] for d in g["donors"] if d["code"] == b["donor"]), ""),
                             next((d["eligibility"] for d in g["donors"] if d["code"] == b["donor"]), ""),
                             next((d["consent"] for d in g["donors"] if d["code"] == b["donor"]), ""),
                             b["code"], b["kind"], str(b["passage_at_freeze"])] for b in g["banks"]]),
        Section("Harvests pooled",
                table_header=["Harvest", "Culture", "Collected", "Conditioning h", "Harvest mL", "Taken mL",
                              "Performed by", "Verified by"],
                table_rows=[[h["harvest"], h["culture"], _fmt(h["collected_at"]), _fmt(h["conditioning_hours"]),
                             _fmt(h["harvest_volume_ml"]), _fmt(h["volume_taken_ml"]), _fmt(h["performed_by"]),
                             _fmt(h["verified_by"])] for h in g["harvests"]]),
        Section("Processing", table_header=["Step", "Performed by", "Verified by", "Quantities"], table_rows=[
            ["Pooling", _person(lot.pooled_by) + f" ({_fmt(lot.pooled_at)})",
             _person(lot.pool_verified_by) + f" ({_fmt(lot.pool_verified_at)})", f"{_fmt(pr['volume_in_ml'])} mL in"],
            ["Filtration", _person(lot.filtration_performed_by) + f" ({_fmt(lot.filtered_at)})",
             _person(lot.filtration_verified_by) + f" ({_fmt(lot.filtration_verified_at)})",
             f"{_fmt(pr['filter_pore_size_um'])} µm, {_fmt(pr['volume_filtered_ml'])} mL filtered; integrity "
             f"{_fmt(pr['integrity_test_method'])} passed: {_fmt(pr['integrity_test_passed'])}"],
            ["Concentration", _person(lot.concentration_performed_by) + f" ({_fmt(lot.concentrated_at)})",
             _person(lot.concentration_verified_by) + f" ({_fmt(lot.concentration_verified_at)})",
             f"cut-off {_fmt(pr['concentration_cutoff_kda'])} kDa, factor {_fmt(pr['concentration_factor'])}, "
             f"{_fmt(pr['volume_out_ml'])} mL out; yield {_fmt(pr['yield_percent'])} %"],
        ]),
    ]
    fd = g["freeze_drying"]
    if fd:
        sections.append(Section(
            f"Freeze-drying {fd['run_number']}",
            pairs=[("Dryer / recipe", f"{fd['dryer']} / {fd['recipe']}"), ("Vials loaded", _fmt(fd["vials_loaded"])),
                   ("Fill volume", f"{_fmt(fd['fill_volume_ml'])} mL"),
                   ("Run", f"{_fmt(fd['started_at'])} – {_fmt(fd['ended_at'])}"),
                   ("End of primary drying", _fmt(fd["end_of_primary_drying"])),
                   ("Stoppering", _fmt(fd["stoppering"])), ("Alarms", _fmt(fd["alarm_count"])),
                   ("Performed / verified by", f"{_fmt(fd['performed_by'])} / {_fmt(fd['verified_by'])}")],
            table_header=["Phase", "Shelf set °C", "Shelf actual °C", "Pressure set mbar", "Pressure actual mbar",
                          "Minutes"],
            table_rows=[[p["phase"], _fmt(p["shelf_temperature_setpoint_c"]), _fmt(p["shelf_temperature_actual_c"]),
                         _fmt(p["chamber_pressure_setpoint_mbar"]), _fmt(p["chamber_pressure_actual_mbar"]),
                         _fmt(p["duration_minutes"])] for p in fd["phases"]],
        ))
    pk = g["packaging"]
    if pk:
        reconciliation = lot_label_reconciliation(lot)
        sections.append(Section(f"Packaging {pk['run_number']}", pairs=[
            ("Vials loaded / packaged / rejected / unaccounted",
             f"{_fmt(pk['vials_loaded'])} / {pk['vials_packaged']} / {pk['vials_rejected']} / "
             f"{_fmt(pk['vials_unaccounted'])}"),
            ("Ended", _fmt(pk["ended_at"])), ("Storage", pk["storage_location"]),
            ("Performed / verified by", f"{_fmt(pk['performed_by'])} / {_fmt(pk['verified_by'])}"),
            ("Vials by status", ", ".join(f"{k}: {v}" for k, v in g["vials"].items())),
            *[(f"Labels {r.template} {r.kind}", f"{r.items_labelled} vials labelled, {r.labels_issued} labels issued, "
               f"{r.reprints} reprints" + (f"; unexpected {', '.join(r.unexpected)}" if r.unexpected else ""))
              for r in reconciliation.rows],
        ]))
    ctx.progress(40)
    investigations = investigations_on([(CMLot, [lot.pk])])
    sections.append(Section("Investigations", table_header=["Number", "Kind", "Title", "Status", "Opened", "Closed",
                                                              "Conclusion"],
                            table_rows=[[i.number, i.kind, i.title, i.status,
                                         f"{_fmt(i.opened_at)} {_person(i.opened_by)}",
                                         f"{_fmt(i.closed_at)} {_person(i.closed_by) if i.closed_by else ''}",
                                         i.conclusion or "—"] for i in investigations]))
    signatures = list(signatures_of(lot))
    # Whether a signed field changed since each signature, as the API and the admin show it.
    statuses = signature_current_statuses([(lot, s) for s in signatures])
    changed_rows = [i for i, s in enumerate(signatures) if statuses[s.pk] and statuses[s.pk].changed_after_signing]
    sections.append(Section("Signatures", table_header=["Printed name", "Meaning", "Signed (UTC)", "Reason",
                                                         "Signed content"],
                            table_rows=[[s.printed_name, s.meaning, _fmt(s.signed_at), s.reason or "—",
                                         signed_content_note(statuses[s.pk])] for s in signatures],
                            highlighted_rows=changed_rows))
    timeline = timeline_for(lot)
    seen: set[tuple[str, str]] = set()
    rows, changed = [], []
    for entry in timeline.entries.filter(sequence__lte=ctx.chain_head.sequence).iterator():
        key = (entry.object_type, entry.object_id)
        later = key in seen
        seen.add(key)
        if later and entry.action != "created":
            changed.append(len(rows))
        marked = later and entry.action != "created"
        rows.append([str(entry.sequence), _fmt(entry.at), entry.username, entry.action + (" *" if marked else ""),
                     f"{entry.object_type} {entry.object_repr}", _change_text(entry.changes), entry.reason or ""])
    ctx.progress(70)
    sections.append(Section(
        "Audit trail of the lot", paragraphs=["Rows marked * (shaded) change a record after its first entry."],
        table_header=["#", "When", "Who", "Action", "Object", "Changes (old → new)", "Reason"], table_rows=rows,
        highlighted_rows=changed, column_widths=[0.06, 0.13, 0.09, 0.1, 0.18, 0.32, 0.12],
    ))
    report = Report(
        title=f"Batch record — lot {lot.lot_number}", document_id=f"Batch record {lot.lot_number}",
        chain_head=ctx.chain_head, generated_by=_person(ctx.requested_by), generated_at=timezone.now(),
        sections=sections, subtitle=lot.product.name,
    )
    content = render_report(report)
    return BuiltDocument(content, f"batch-record-{lot.lot_number}.pdf", "application/pdf")


register_builder(BATCH_RECORD, build_batch_record, "reports", _may_read_batch_record, title="batch record")


# --- admin actions on the lot admin -------------------------------------------------------------------

CARTON_SIZE = 10  # vials per carton when printed from the admin


def lot_unlabelled_serials(lot: CMLot, *, kind: str) -> list[str]:
    """Vials that could get a ``kind`` vial label and have none yet (the admin prints these; reprints,
    which need a reason, go through the API)."""
    statuses = [VialStatus.AVAILABLE] if kind == LabelKind.FINAL else [VialStatus.AVAILABLE, VialStatus.ALLOCATED]
    serials = list(lot.vials.filter(voided_at__isnull=True, status__in=statuses).order_by("sequence")
                   .values_list("serial", flat=True))
    done = label_print_exists(subject_type=object_type_of(CMLot), subject_id=str(lot.pk), template="vial",
                              kind=kind, item_keys=serials)
    return [s for s in serials if s not in done]


def _job_link(job: DocumentJob) -> str:
    from django.urls import reverse
    from django.utils.html import format_html

    return format_html('<a href="{}">job {}</a>', reverse("admin:documents_documentjob_change", args=[job.pk]),
                       job.pk)


def _lot_document_action(description: str, request_fn):
    from django.contrib import admin, messages
    from django.utils.html import format_html

    from cmlims.exceptions import ApplicationError

    def action(modeladmin, request, queryset):
        for lot in queryset.select_related("product").order_by("pk"):
            try:
                job = request_fn(lot, request.user)
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{lot}: {exc.message}", level=messages.ERROR)
                continue
            modeladmin.message_user(request, format_html("{}: {} queued — {}", lot, description, _job_link(job)),
                                    level=messages.SUCCESS)

    action.__name__ = "documents_" + description.lower().replace(" ", "_")
    return admin.action(description=description)(action)


def _vial_labels(kind: str):
    def request_fn(lot: CMLot, user) -> DocumentJob:
        _may_print(user, {"kind": kind})
        serials = lot_unlabelled_serials(lot, kind=kind)
        if not serials:
            raise InvalidInput("every vial already has this label; reprint through the API with a reason",
                               fields={"vials": ["nothing left to label"]})
        return lot_labels_request(lot_number=lot.lot_number, actor=user, template="vial", kind=kind,
                                  output_format="pdf", vials=serials)
    return request_fn


def _carton_labels(lot: CMLot, user) -> DocumentJob:
    kind = LabelKind.FINAL if lot.status == LotStatus.RELEASED else LabelKind.QUARANTINE
    return lot_labels_request(lot_number=lot.lot_number, actor=user, template="carton", kind=kind,
                              output_format="pdf", carton_size=CARTON_SIZE, reason="carton labels from the admin")


def _show_reconciliation(modeladmin, request, queryset):
    from django.contrib import messages

    for lot in queryset.order_by("pk"):
        rec = lot_label_reconciliation(lot)
        rows = "; ".join(f"{r.kind}: {r.items_labelled} labelled, {r.labels_issued} issued, {r.reprints} reprints"
                         + (f", unexpected {', '.join(r.unexpected)}" if r.unexpected else "") for r in rec.rows)
        modeladmin.message_user(
            request, f"{lot}: {rec.expected_items} vials; vial labels — {rows or 'none issued'}"
            + ("" if rec.balanced else " — DOES NOT RECONCILE"),
            level=messages.INFO if rec.balanced else messages.WARNING,
        )


def lot_admin_actions() -> list:
    from django.contrib import admin

    return [
        _lot_document_action("Print quarantine labels", _vial_labels(LabelKind.QUARANTINE)),
        _lot_document_action("Print final vial labels", _vial_labels(LabelKind.FINAL)),
        _lot_document_action("Print carton labels", _carton_labels),
        _lot_document_action("Generate batch record",
                             lambda lot, user: lot_batch_record_request(lot_number=lot.lot_number, actor=user)),
        admin.action(description="Show label reconciliation")(_show_reconciliation),
        *_EXTRA_ACTIONS,
    ]


_EXTRA_ACTIONS: list = []


def lot_admin_action_add(description: str, request_fn) -> None:
    """Apps above batches (qc: the certificate of analysis) add their document actions to the lot admin."""
    _EXTRA_ACTIONS.append(_lot_document_action(description, request_fn))
    install_lot_admin_actions()


def install_lot_admin_actions() -> None:
    """Append the document actions to the registered lot admin (idempotent; no-op without it)."""
    from django.contrib import admin

    model_admin = admin.site._registry.get(CMLot)
    if model_admin is None:
        return
    existing = list(model_admin.actions or [])
    names = {getattr(a, "__name__", a) for a in existing}
    model_admin.actions = existing + [a for a in lot_admin_actions() if a.__name__ not in names]


install_lot_admin_actions()
