"""The batch record of a lot: every step with who performed and verified it and when, quantities and yield,
investigations, signatures and the lot's audit trail, rendered by the core report layout."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from batches.documents.labels import lot_label_reconciliation
from batches.models import CMLot
from batches.selectors import lot_get
from cmlims import roles
from cmlims.audit import object_type_of
from cmlims.documents.models import DocumentJob
from cmlims.documents.registry import BuildContext, BuiltDocument, register_builder
from cmlims.documents.selectors import label_dispositions_for_subject
from cmlims.documents.services import document_job_request
from cmlims.exceptions import Conflict

BATCH_RECORD = "batch_record"


def _may_read_batch_record(user, params: dict) -> None:
    roles.require_role(user, roles.QC_OFFICER, "Generating the batch record")


def lot_batch_record_request(*, lot: CMLot, actor) -> DocumentJob:
    _may_read_batch_record(actor, {})
    with transaction.atomic():
        lot = lot_get(lot.lot_number)  # as stored now, not as the caller last read it
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
        ]))
        sections.append(_label_section(lot, reconciliation))
        dispositions = list(label_dispositions_for_subject(subject_type=object_type_of(CMLot), subject_id=str(lot.pk)))
        if dispositions:
            sections.append(Section(
                "Labels destroyed and returned",
                table_header=["When", "Who", "Labels", "Item", "Count", "Reason"],
                table_rows=[[_fmt(d.recorded_at), _person(d.recorded_by), f"{d.template} {d.kind}", d.item_key,
                             f"{d.count} {d.disposition}", d.reason] for d in dispositions],
                column_widths=[0.14, 0.14, 0.14, 0.16, 0.12, 0.30],
            ))
    ctx.progress(40)
    # The lot's own and its results' (OOS) investigations; the results through the reverse relation (batches
    # does not import qc).
    results = lot.qc_results
    investigations = investigations_on([(CMLot, [lot.pk]), (results.model, results.values_list("pk", flat=True))])
    sections.append(Section("Investigations", table_header=["Number", "Kind", "Title", "Status", "Opened", "Closed",
                                                              "Conclusion"],
                            table_rows=[[i.number, i.kind, i.title, i.status,
                                         f"{_fmt(i.opened_at)} {_person(i.opened_by)}",
                                         f"{_fmt(i.closed_at)} {_person(i.closed_by) if i.closed_by else ''}"
                                         + (f"; signed \"{i.closing_signature.meaning}\" by "
                                            f"{i.closing_signature.printed_name}" if i.closing_signature_id else ""),
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
        marked = later and entry.action != "created"
        if marked or entry.late_entry:
            changed.append(len(rows))
        action = entry.action + (" *" if marked else "")
        if entry.late_entry:  # entered more than CMLIMS_LATE_ENTRY_HOURS after the step happened
            action += f" — LATE ENTRY (step at {_fmt(entry.occurred_at)})"
        rows.append([str(entry.sequence), _fmt(entry.at), entry.username, action,
                     f"{entry.object_type} {entry.object_repr}", _change_text(entry.changes), entry.reason or ""])
    ctx.progress(70)
    sections.append(Section(
        "Audit trail of the lot",
        paragraphs=["Rows marked * (shaded) change a record after its first entry; rows marked LATE ENTRY "
                    "(shaded) were entered long after the step, with the reason why."],
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


def _label_section(lot: CMLot, reconciliation):
    """Label reconciliation (211.125/211.130): issued − used − destroyed − returned per template and kind."""
    from cmlims.documents.reports import Section

    problems = "; ".join(c["detail"] for c in reconciliation.conditions(f"lot {lot.lot_number}"))
    verdict = ("Every label issued is accounted for." if reconciliation.balanced else
               "DOES NOT RECONCILE: " + (problems or "no labels were issued for the lot's vials"))
    rows = reconciliation.rows
    return Section(
        "Label reconciliation",
        paragraphs=[f"Issued − used − destroyed − returned = unaccounted (must be 0). {verdict}"],
        table_header=["Labels", "Issued", "Used", "Destroyed", "Returned", "Unaccounted", "Reprints", "Unlabelled"],
        table_rows=[[f"{r.template} {r.kind}", str(r.labels_issued), str(r.used), str(r.destroyed), str(r.returned),
                     str(r.unaccounted), str(r.reprints), str(r.unlabelled) if r.template == "vial" else "—"]
                    for r in rows],
        highlighted_rows=[i for i, r in enumerate(rows) if r.unaccounted or r.unexpected],
    )


register_builder(BATCH_RECORD, build_batch_record, "reports", _may_read_batch_record, title="batch record")

