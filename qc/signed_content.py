"""What each QC signature covers: versioned lists of signed fields, built the same way at signing time and
afterwards, so a change to a signed field shows as "changed after signing" and a change to any other
field does not. Bump a version when its field list changes; old signatures keep being checked against
the builder of their own version."""

from __future__ import annotations

from typing import Any

from cmlims.audit import to_jsonable
from cmlims.esign.models import Signature
from cmlims.esign.services import SignatureStatus, signature_status

LOT_SIGNOFF_V1 = "lot-signoff/1"
LOT_SIGNOFF_V2 = "lot-signoff/2"
RESULT_APPROVAL_V1 = "qc-result/1"
SPECIFICATION_V1 = "specification/1"

# The lot's own signed fields: identity, quantities, processing outcome, expiry. Status, hold flag and reason,
# timestamps of status changes are NOT signed: they change because of the signature or around it.
LOT_SIGNED_FIELDS = (
    "lot_number", "product_id", "pooled_at", "volume_in_ml", "filter_pore_size_um", "filter_lot",
    "integrity_test_passed", "volume_filtered_ml", "concentration_cutoff_kda", "concentration_factor",
    "volume_out_ml", "yield_percent", "expiry", "voided_at",
)
RESULT_SIGNED_FIELDS = (
    "id", "lot_id", "spec_item_id", "value_entered", "unit_entered", "value", "qualitative_value", "passed",
    "analyst_id", "instrument", "tested_at", "attachment_sha256", "status", "retest_of_id", "supersedes_id",
)


def result_fields(result) -> dict:
    return {name: to_jsonable(getattr(result, name)) for name in RESULT_SIGNED_FIELDS}


def result_content(result) -> dict:
    item = result.spec_item
    return {
        "result": result_fields(result),
        "spec_item": {"id": item.pk, "test": item.test, "unit": item.unit, "criterion": item.criterion},
    }


def specification_content(specification) -> dict:
    items = [
        {name: to_jsonable(getattr(item, name)) for name in (
            "id", "order", "test", "method", "unit", "limit_kind", "lower", "upper", "lower_inclusive",
            "upper_inclusive", "allowed_values", "passing_values", "mandatory", "demo_limit")}
        for item in specification.items.order_by("order", "id")
    ]
    return {"specification": {"id": specification.pk, "product_id": specification.product_id,
                              "version": specification.version, "title": specification.title},
            "items": items}


def lot_content(lot, review, *, results=None, investigations=None) -> dict:
    """Lot data, every result (with its approval), the investigations, and the audit-review confirmation.
    ``results`` / ``investigations`` may be given preloaded (``lot_signature_statuses``)."""
    from qc.selectors import lot_investigations, lot_results, lot_specification

    specification = lot_specification(lot)
    results_out = []
    for result in (results if results is not None else lot_results(lot)):
        body = result_fields(result)
        body["test"] = result.spec_item.test
        body["approved_by_id"] = result.approved_by_id
        body["approval_id"] = result.approval_id
        results_out.append(body)
    investigations_out = [
        {"id": inv.pk, "kind": inv.kind, "status": inv.status, "subject": f"{inv.content_type_id}:{inv.object_id}",
         "root_cause": inv.root_cause, "related_lots_checked": inv.related_lots_checked, "conclusion": inv.conclusion}
        for inv in (investigations if investigations is not None else lot_investigations(lot))
    ]
    content = {f"lot.{name}": to_jsonable(getattr(lot, name)) for name in LOT_SIGNED_FIELDS}
    content["lot.specification"] = (
        {"id": specification.pk, "version": specification.version} if specification else None
    )
    content["results"] = results_out
    content["investigations"] = investigations_out
    content["audit_review"] = (
        {"id": review.pk, "reviewer_id": review.reviewer_id, "reviewed_from": review.reviewed_from,
         "reviewed_through": review.reviewed_through, "entries_reviewed": review.entries_reviewed}
        if review else None
    )
    return content


# --- field list v2 (lot-signoff/2): the whole genealogy, each field named by its record ----------------------
#
# A release vouches for everything the lot is made of, so v2 signs the upstream records' fields too (donor,
# banks, culture, passages, harvests, pooling, freeze-drying run and phases, packaging, the vial count) and
# the investigations' phase and product disposition. Every field is its own key, "<kind>[<record>].<field>",
# so "changed after signing" names the record and the field. Fields that change without changing what was
# made (a bank's vials on hand, a culture closing, vial status and storage) are not signed.

LOT_V2_FIELDS = LOT_SIGNED_FIELDS + (
    "pooled_by_id", "pool_verified_by_id", "filtered_at", "filtration_performed_by_id", "filtration_verified_by_id",
    "integrity_test_method", "integrity_test_limit_bar", "integrity_test_measured_bar", "concentrated_at",
    "concentration_performed_by_id", "concentration_verified_by_id",
)
_STEP = ("performed_by_id", "performed_at", "verified_by_id", "voided_at")
GENEALOGY_V2_FIELDS = {
    "donor": ("code", "tissue", "collection_date", "consent_status", "consent_recorded_on", "eligibility_status",
              "eligibility_determined_on", "eligibility_notes", "voided_at"),
    "bank": ("code", "kind", "source_id", "parent_bank_id", "passage_at_freeze", "frozen_on", "vials_frozen",
             "cells_per_vial", "cd73_percent", "cd90_percent", "cd105_percent", "cd34_percent", "cd45_percent",
             "cd14_percent", "cd19_percent", "hla_dr_percent", *_STEP),
    "culture": ("code", "product_id", "bank_id", "started_at", "vessel", "medium_lot", "reagent_lots",
                "conditioning_started_at", "confluence_at_conditioning_percent", *_STEP),
    "passage": ("passage_number", "seeded_at", "harvested_at", "vessel", "medium_lot", "reagent_lots", "cells_seeded",
                "cells_harvested", "viability_percent", "confluence_percent", "population_doublings",
                "cumulative_population_doublings", *_STEP),
    "harvest": ("culture_id", "sequence", "conditioning_started_at", "conditioning_ended_at", "volume_ml",
                "viability_percent", "hold_temperature_c", "max_hold_hours", "container", *_STEP),
    "pooling": ("harvest_id", "volume_ml", "added_by_id"),
    "freeze_drying": ("run_number", "dryer", "recipe", "recipe_version", "vials_loaded", "fill_volume_ml",
                      "started_at", "ended_at", "end_of_primary_drying_method", "end_of_primary_drying_at",
                      "end_of_primary_drying_evidence", "stoppering_method", "stoppering_pressure_mbar",
                      "stoppered_at", "alarms", "alarm_count", "completed_by_id", "completed_at", *_STEP),
    "phase": ("phase", "shelf_temperature_setpoint_c", "shelf_temperature_actual_c", "chamber_pressure_setpoint_mbar",
              "chamber_pressure_actual_mbar", "started_at", "ended_at", "duration_minutes", "voided_at"),
    "packaging": ("run_number", "started_at", "ended_at", "vials_packaged", "vials_rejected", "storage_location_id",
                  *_STEP),
}
INVESTIGATION_V2_FIELDS = ("kind", "status", "phase", "root_cause", "related_lots_checked", "conclusion",
                           "product_disposition")


def _fields_of(content: dict, kind: str, label: str, obj, names) -> None:
    for name in names:
        content[f"{kind}[{label}].{name}"] = to_jsonable(getattr(obj, name))


def _genealogy_v2(content: dict, records) -> None:
    fields = GENEALOGY_V2_FIELDS
    for donor in records.donors:
        _fields_of(content, "donor", donor.code, donor, fields["donor"])
    for bank in records.banks:
        _fields_of(content, "bank", bank.code, bank, fields["bank"])
    for culture in records.cultures:
        _fields_of(content, "culture", culture.code, culture, fields["culture"])
    for passage in records.passages:
        _fields_of(content, "passage", f"{passage.culture.code} P{passage.passage_number} #{passage.pk}", passage,
                   fields["passage"])
    for harvest, contribution in zip(records.harvests, records.contributions, strict=True):
        label = str(harvest)
        _fields_of(content, "harvest", label, harvest, fields["harvest"])
        _fields_of(content, "pooling", label, contribution, fields["pooling"])
    run = records.lyophilisation_run
    if run is not None:
        _fields_of(content, "freeze_drying", run.run_number, run, fields["freeze_drying"])
        for phase in records.phases:
            _fields_of(content, "phase", f"{run.run_number} {phase.phase} #{phase.pk}", phase, fields["phase"])
    if records.packaging_run is not None:
        pack = records.packaging_run
        _fields_of(content, "packaging", pack.run_number, pack, fields["packaging"])
    content["vials.count"] = records.vial_count


def lot_content_v2(lot, review, *, results=None, investigations=None, genealogy=None) -> dict:
    """What a lot sign-off signs (v2): the lot, its genealogy, every result (with its approval), the
    investigations (with phase and disposition) and the audit-review confirmation, one key per field.
    ``results`` / ``investigations`` / ``genealogy`` may be given preloaded (``lot_signature_statuses``)."""
    from batches.selectors import lots_genealogy_records
    from qc.selectors import lot_investigations, lot_results, lot_specification

    specification = lot_specification(lot)
    content = {f"lot.{name}": to_jsonable(getattr(lot, name)) for name in LOT_V2_FIELDS}
    content["lot.specification"] = (
        {"id": specification.pk, "version": specification.version} if specification else None
    )
    _genealogy_v2(content, genealogy if genealogy is not None else lots_genealogy_records([lot.pk])[lot.pk])
    for result in (results if results is not None else lot_results(lot)):
        label = f"{result.spec_item.test} #{result.pk}"
        _fields_of(content, "result", label, result, RESULT_SIGNED_FIELDS + ("approved_by_id", "approval_id"))
        content[f"result[{label}].test"] = result.spec_item.test
    for inv in (investigations if investigations is not None else lot_investigations(lot)):
        _fields_of(content, "investigation", inv.number, inv, INVESTIGATION_V2_FIELDS)
        content[f"investigation[{inv.number}].subject"] = f"{inv.content_type_id}:{inv.object_id}"
    content["audit_review"] = (
        {"id": review.pk, "reviewer_id": review.reviewer_id, "reviewed_from": review.reviewed_from,
         "reviewed_through": review.reviewed_through, "entries_reviewed": review.entries_reviewed}
        if review else None
    )
    return content


LOT_CONTENT_BUILDERS = {LOT_SIGNOFF_V1: lot_content, LOT_SIGNOFF_V2: lot_content_v2}


def lot_signature_status(lot, signature: Signature) -> SignatureStatus:
    """Rebuild the signed content of ``signature`` from the lot as it is now, by the signature's own field
    list version (v1 signatures keep being checked against v1), and compare."""
    return lot_signature_statuses([(lot, signature)])[0]


def lot_signature_statuses(pairs: list[tuple[Any, Signature]]) -> list[SignatureStatus]:
    """``lot_signature_status`` for a page of (lot, signature) pairs in a constant number of queries: results,
    investigations, specifications, reviews and (for v2 signatures) genealogies are each read once for the
    whole page."""
    from batches.selectors import lots_genealogy_records
    from qc.models import LotAuditReview
    from qc.selectors import investigations_by_lot, preload_lot_specifications, results_by_lot_instances

    lots = list({lot.pk: lot for lot, _ in pairs}.values())
    preload_lot_specifications(lots)
    results = results_by_lot_instances(lots)
    investigations = investigations_by_lot(results)
    review_ids = [(sig.content.get("audit_review") or {}).get("id") for _, sig in pairs]
    reviews = LotAuditReview.objects.in_bulk([i for i in review_ids if i])
    genealogies = lots_genealogy_records(
        {lot.pk for lot, sig in pairs if sig.field_list_version == LOT_SIGNOFF_V2})
    out = []
    for (lot, signature), review_id in zip(pairs, review_ids, strict=True):
        build = LOT_CONTENT_BUILDERS.get(signature.field_list_version, lot_content)
        extra = {"genealogy": genealogies[lot.pk]} if build is lot_content_v2 else {}
        out.append(signature_status(signature, build(lot, reviews.get(review_id), results=results[lot.pk],
                                                     investigations=investigations[lot.pk], **extra)))
    return out


def result_signature_status(result, signature: Signature) -> SignatureStatus:
    return signature_status(signature, result_content(result))


# --- which lots a write may have changed the signed content of (stored checks, cmlims.esign) ------------------

_ALWAYS = frozenset({"created", "voided"})
# Per audited record type: the fields (attnames, as audit entries name them) some field list version signs.
# An entry whose changes name none of them (a lot's status, a vial shipped) changes no signed content.
_SIGNED_ATTNAMES = {
    "batches.cmlot": frozenset(LOT_V2_FIELDS),
    "qc.qcresult": frozenset(RESULT_SIGNED_FIELDS + ("approved_by_id", "approval_id")),
    "qc.lotauditreview": frozenset({"reviewer_id", "reviewed_from", "reviewed_through", "entries_reviewed"}),
    "investigations.investigation": frozenset(
        INVESTIGATION_V2_FIELDS + ("content_type_id", "object_id")),
    "batches.cellsource": frozenset(GENEALOGY_V2_FIELDS["donor"]),
    "batches.cellbank": frozenset(GENEALOGY_V2_FIELDS["bank"]),
    "batches.culture": frozenset(GENEALOGY_V2_FIELDS["culture"]),
    "batches.passage": frozenset(GENEALOGY_V2_FIELDS["passage"] + ("culture_id",)),
    "batches.harvest": frozenset(GENEALOGY_V2_FIELDS["harvest"]),
    "batches.harvestcontribution": frozenset(GENEALOGY_V2_FIELDS["pooling"] + ("lot_id",)),
    "batches.lyophilisationrun": frozenset(GENEALOGY_V2_FIELDS["freeze_drying"] + ("lot_id",)),
    "batches.lyophilisationphase": frozenset(GENEALOGY_V2_FIELDS["phase"] + ("run_id",)),
    "batches.packagingrun": frozenset(GENEALOGY_V2_FIELDS["packaging"] + ("lot_id",)),
    "batches.vial": frozenset({"voided_at", "lot_id"}),  # only the count is signed
    "qc.specitem": frozenset({"test", "unit", "criterion", "specification_id"}),
    "qc.specification": frozenset({"status", "effective_from", "version", "product_id"}),
}


def _touched(entries: list, object_type: str) -> list[str]:
    """Ids of the records of ``object_type`` whose entries may change signed content."""
    signed = _SIGNED_ATTNAMES[object_type]
    return [e.object_id for e in entries
            if e.action in _ALWAYS or not isinstance(e.changes, dict) or not e.changes
            or not signed.isdisjoint(e.changes)]


def _lot_ids(queryset, field: str = "lot_id"):
    """``queryset``'s ``field`` (a lot id) as text, the stored checks' subject id."""
    from django.db.models import CharField
    from django.db.models.functions import Cast

    return queryset.order_by().annotate(_lot=Cast(field, CharField())).values("_lot")


def lot_signoff_affected(entries_by_type: dict[str, list]) -> list:
    """The lots whose sign-off content a write's audit entries may have changed (``affected`` of the lot
    sign-off checker): the lot, its results (and their spec items), investigations, audit reviews and its
    genealogy up to the donor, as subqueries of lot ids, so a page of lots reads their stored checks."""
    # Every audited write comes here: most touch no signed record and leave before the imports below.
    ids = {t: touched for t in _SIGNED_ATTNAMES.keys() & entries_by_type.keys()
           if (touched := _touched(entries_by_type[t], t))}
    if not ids:
        return []
    from django.db.models import BigIntegerField, Exists, OuterRef
    from django.db.models.functions import Cast

    from batches.models import (
        CMLot,
        HarvestContribution,
        LyophilisationPhase,
        LyophilisationRun,
        PackagingRun,
        Passage,
        Vial,
    )
    from qc.models import LotAuditReview, QCResult, Specification

    out: list = []
    by_contribution = HarvestContribution.objects.all()
    if "batches.cmlot" in ids:
        out.append(ids["batches.cmlot"])
    # A record moved to another lot changed the lot it left as well (the lookups below find the new one).
    moved_from = [str(change[0]) for entries in entries_by_type.values() for e in entries
                  if isinstance(e.changes, dict) and isinstance(change := e.changes.get("lot_id"), list)
                  and change and change[0] is not None]
    if moved_from:
        out.append(moved_from)
    for object_type, model in (("qc.qcresult", QCResult), ("qc.lotauditreview", LotAuditReview),
                               ("batches.harvestcontribution", HarvestContribution),
                               ("batches.lyophilisationrun", LyophilisationRun),
                               ("batches.packagingrun", PackagingRun), ("batches.vial", Vial)):
        if object_type in ids:
            out.append(_lot_ids(model.objects.filter(pk__in=ids[object_type])))
    if "batches.lyophilisationphase" in ids:
        out.append(_lot_ids(LyophilisationRun.objects.filter(
            pk__in=LyophilisationPhase.objects.filter(pk__in=ids["batches.lyophilisationphase"]).values("run_id"))))
    if "qc.specitem" in ids:
        out.append(_lot_ids(QCResult.objects.filter(spec_item_id__in=ids["qc.specitem"])))
    if "investigations.investigation" in ids:
        from django.contrib.contenttypes.models import ContentType

        from cmlims.investigations.models import Investigation

        on = Investigation.objects.filter(pk__in=ids["investigations.investigation"])
        out.append(on.filter(content_type=ContentType.objects.get_for_model(CMLot)).values("object_id"))
        out.append(_lot_ids(QCResult.objects.filter(pk__in=on.filter(
            content_type=ContentType.objects.get_for_model(QCResult)).values(
            _result=Cast("object_id", BigIntegerField())))))
    if "batches.harvest" in ids:
        out.append(_lot_ids(by_contribution.filter(harvest_id__in=ids["batches.harvest"])))
    if "batches.culture" in ids:
        out.append(_lot_ids(by_contribution.filter(harvest__culture_id__in=ids["batches.culture"])))
    if "batches.passage" in ids:
        out.append(_lot_ids(by_contribution.filter(
            harvest__culture_id__in=Passage.objects.filter(pk__in=ids["batches.passage"]).values("culture_id"))))
    if "batches.cellbank" in ids:  # a culture's bank, or the master bank of its working bank
        banks = ids["batches.cellbank"]
        out.append(_lot_ids(by_contribution.filter(harvest__culture__bank_id__in=banks)))
        out.append(_lot_ids(by_contribution.filter(harvest__culture__bank__parent_bank_id__in=banks)))
    if "batches.cellsource" in ids:
        donors = ids["batches.cellsource"]
        out.append(_lot_ids(by_contribution.filter(harvest__culture__bank__source_id__in=donors)))
        out.append(_lot_ids(by_contribution.filter(harvest__culture__bank__parent_bank__source_id__in=donors)))
    if "qc.specification" in ids:
        # Which version is in force for a lot (its signed "lot.specification") changes only with an
        # approved version of its product: every lot of that product, whatever its pooling time.
        versions = Specification.objects.filter(pk__in=ids["qc.specification"], effective_from__isnull=False)
        out.append(_lot_ids(CMLot.objects.filter(Exists(versions.filter(product_id=OuterRef("product_id")))),
                            "id"))
    return out
