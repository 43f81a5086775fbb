"""Donors (cell sources) and cell banks."""

from __future__ import annotations

from django.db import transaction

from cmlims.audit import audited_create
from cmlims.exceptions import field_error
from cmlims.timing import step_entry

from ..models import CellBank, CellSource
from .common import change_begin, record_create, refuse_unknown, require_lab_staff, update_fields

CELL_SOURCE_FIELDS = {
    "code", "tissue", "collection_date", "consent_status", "consent_recorded_on", "eligibility_status",
    "eligibility_determined_on", "eligibility_notes",
}
CELL_BANK_FIELDS = {
    "code", "kind", "source", "parent_bank", "passage_at_freeze", "frozen_on", "vials_frozen", "vials_on_hand",
    "cells_per_vial", "storage_location", "performed_at", "cd73_percent", "cd90_percent", "cd105_percent",
    "cd34_percent", "cd45_percent", "cd14_percent", "cd19_percent", "hla_dr_percent",
}


@transaction.atomic
def cell_source_create(*, actor, reason: str = "", **values) -> CellSource:
    return record_create(CellSource, actor=actor, action="Recording a cell source", allowed=CELL_SOURCE_FIELDS,
                         values=values, reason=reason)


@transaction.atomic
def cell_source_update(*, source: CellSource, actor, reason: str = "", **values) -> CellSource:
    source = change_begin(source, actor=actor, action="Changing a cell source")
    if "code" in values and values["code"] != source.code and source.banks.exists():
        raise field_error("code", "cannot change once cell banks refer to this donor")
    return update_fields(source, allowed=CELL_SOURCE_FIELDS, values=values, actor=actor, reason=reason)


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
