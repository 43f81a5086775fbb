"""Donors (cell sources) and cell banks."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cmlims import roles
from cmlims.audit import audited_create, audited_update
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, InvalidInput, field_error
from cmlims.timing import step_entry

from ..locks import row_lock
from ..models import CellBank, CellSource
from .common import (
    change_begin,
    record_create,
    refuse_if_voided,
    refuse_unknown,
    require_lab_staff,
    update_fields,
)

CELL_SOURCE_FIELDS = {
    "code", "tissue", "collection_date", "consent_status", "consent_recorded_on", "eligibility_notes",
}
# Written only by the signed determination of a QC officer (donor_eligibility_determine); the API parses them so
# that lab staff who send them are told why they are refused, by name.
ELIGIBILITY_FIELDS = ("eligibility_status", "eligibility_determined_on")
CELL_SOURCE_INPUT_FIELDS = CELL_SOURCE_FIELDS | set(ELIGIBILITY_FIELDS)
# The screening data a determination rests on: a change to any of them after it was signed clears it.
SCREENING_FIELDS = ("code", "tissue", "collection_date", "eligibility_notes")
DONOR_ELIGIBILITY_V1 = "donor-eligibility/1"
DETERMINATIONS = (CellSource.Eligibility.ELIGIBLE, CellSource.Eligibility.INELIGIBLE)
CELL_BANK_FIELDS = {
    "code", "kind", "source", "parent_bank", "passage_at_freeze", "frozen_on", "vials_frozen", "vials_on_hand",
    "cells_per_vial", "storage_location", "performed_at", "cd73_percent", "cd90_percent", "cd105_percent",
    "cd34_percent", "cd45_percent", "cd14_percent", "cd19_percent", "hla_dr_percent",
}


def _refuse_eligibility(values: dict) -> None:
    named = [name for name in ELIGIBILITY_FIELDS if name in values]
    if named:
        problem = ("determined and signed by a QC officer (POST /api/v1/donors/<code>/eligibility/ or the donor's "
                   "\"Determine eligibility\" page), not set here")
        raise InvalidInput("; ".join(f"{name}: {problem}" for name in named),
                           fields={name: [problem] for name in named})


@transaction.atomic
def cell_source_create(*, actor, reason: str = "", **values) -> CellSource:
    _refuse_eligibility(values)
    return record_create(CellSource, actor=actor, action="Recording a cell source", allowed=CELL_SOURCE_FIELDS,
                         values=values, reason=reason)


@transaction.atomic
def cell_source_update(*, source: CellSource, actor, reason: str = "", **values) -> CellSource:
    source = change_begin(source, actor=actor, action="Changing a cell source")
    _refuse_eligibility(values)
    if "code" in values and values["code"] != source.code and source.banks.exists():
        raise field_error("code", "cannot change once cell banks refer to this donor")
    before = {name: getattr(source, name) for name in SCREENING_FIELDS}
    source = update_fields(source, allowed=CELL_SOURCE_FIELDS, values=values, actor=actor, reason=reason)
    changed = sorted(name for name in SCREENING_FIELDS if getattr(source, name) != before[name])
    return _eligibility_clear(source, actor=actor, changed=changed, reason=reason) if changed else source


def _eligibility_clear(source: CellSource, *, actor, changed: list[str], reason: str) -> CellSource:
    """The QC officer determined eligibility on the screening data as it was: a change to it clears the
    determination (in an entry of its own that says so) until a QC officer determines it again."""
    if source.eligibility_signature_id is None and source.eligibility_status == CellSource.Eligibility.PENDING:
        return source
    why = f"eligibility determination cleared: {', '.join(changed)} changed after it was signed"
    return audited_update(source, actor=actor, reason=f"{why} ({reason})" if reason.strip() else why, clean=False,
                          eligibility_status=CellSource.Eligibility.PENDING, eligibility_determined_on=None,
                          eligibility_determined_by=None, eligibility_signature=None)


def donor_eligibility_content(source: CellSource) -> dict:
    """What the determination signs (field list ``donor-eligibility/1``): the screening data and the decision."""
    return {"code": source.code, "tissue": source.tissue, "collection_date": source.collection_date,
            "consent_status": source.consent_status, "consent_recorded_on": source.consent_recorded_on,
            "eligibility_notes": source.eligibility_notes, "eligibility_status": source.eligibility_status,
            "eligibility_reason": source.eligibility_reason, "eligibility_evidence": source.eligibility_evidence,
            "eligibility_determined_on": source.eligibility_determined_on}


def donor_record_author_ids(source: CellSource) -> set[int]:
    """Who recorded or changed the donor's screening data (from the audit trail): they do not determine it."""
    from cmlims.models import AuditEntry

    entries = AuditEntry.objects.filter(object_type="batches.cellsource", object_id=str(source.pk),
                                        user_id__isnull=False)
    return {user_id for user_id, action, changes in entries.values_list("user_id", "action", "changes")
            if action == "created" or set(changes or {}) & set(SCREENING_FIELDS)}


def donor_eligibility_determine(
    *, source: CellSource, actor, eligibility_status: str, reason: str, evidence: str, username: str,
    password: str, meaning: str | None = None,
) -> CellSource:
    """A QC officer determines a donor eligible or ineligible (21 CFR 1271.50) on the screening evidence,
    with a reason, signed "eligibility determined" (both components). Rule 2: whoever recorded or changed the
    donor's screening data does not determine it (409 ``own_donor_record``)."""
    roles.require_role(actor, roles.QC_OFFICER, "Determining donor eligibility")
    errors: dict[str, list[str]] = {}
    if eligibility_status not in DETERMINATIONS:
        errors["eligibility_status"] = [f"must be one of: {', '.join(DETERMINATIONS)}"]
    for name, value in (("reason", reason), ("evidence", evidence)):
        if not (value or "").strip():
            errors[name] = ["required to determine eligibility"]
    if errors:
        raise InvalidInput("; ".join(f"{k}: {v[0]}" for k, v in errors.items()), fields=errors)
    if actor.pk in donor_record_author_ids(source):
        _refuse_own_record(source, actor)
    grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                       meaning=Meaning.ELIGIBILITY_DETERMINED, meaning_sent=meaning or None,
                                       reason=reason)
    with transaction.atomic():
        source = row_lock(CellSource, source.pk)
        refuse_if_voided(source)
        if actor.pk in donor_record_author_ids(source):
            _refuse_own_record(source, actor)
        source = audited_update(source, actor=actor, reason=reason.strip(), eligibility_status=eligibility_status,
                                eligibility_determined_on=timezone.localdate(), eligibility_reason=reason.strip(),
                                eligibility_evidence=evidence.strip(), eligibility_determined_by=actor)
        signature = signature_record(grant=grant, subject=source, signer=actor, meaning=Meaning.ELIGIBILITY_DETERMINED,
                                     reason=reason.strip(), content=donor_eligibility_content(source),
                                     field_list_version=DONOR_ELIGIBILITY_V1)
        return audited_update(source, actor=actor, reason=reason.strip(), eligibility_signature=signature)


def _refuse_own_record(source: CellSource, actor) -> None:
    detail = (f"{actor.get_username()} recorded or changed the screening data of donor {source.code}: another QC "
              "officer determines its eligibility")
    raise Conflict(detail, code="own_donor_record", conditions=[{"code": "own_donor_record", "detail": detail}])


@transaction.atomic
def cell_bank_create(*, actor, reason: str = "", **values) -> CellBank:
    require_lab_staff(actor, "Recording a cell bank")
    refuse_unknown(values, CELL_BANK_FIELDS)
    source = values.get("source")
    if source is not None and source.voided_at is not None:
        raise field_error("source", f"{source} is voided")
    parent = values.get("parent_bank")
    # Not in the future, not before the bank it was expanded from; a late entry needs a reason and is marked.
    with step_entry(values.get("performed_at"), field="performed_at", reason=reason,
                    previous=parent.performed_at if parent is not None else None,
                    previous_name=f"bank {parent} was made" if parent is not None else "") as performed_at:
        values["performed_at"] = performed_at
        return audited_create(CellBank, actor=actor, reason=reason, performed_by=actor, **values)


@transaction.atomic
def cell_bank_update(*, bank: CellBank, actor, reason: str = "", **values) -> CellBank:
    bank = change_begin(bank, actor=actor, action="Changing a cell bank")
    if "source" in values and values["source"].pk != bank.source_id and bank.cultures.exists():
        raise field_error("source", "cannot change once cultures use this bank")
    return update_fields(bank, allowed=CELL_BANK_FIELDS - {"code"} if bank.cultures.exists() else CELL_BANK_FIELDS,
                         values=values, actor=actor, reason=reason)
