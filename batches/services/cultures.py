"""Cultures, passages and harvests: rule 1 (steps in order, passage and PD limits)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cmlims.audit import audited_create, audited_update
from cmlims.exceptions import Conflict, InvalidInput, field_error
from cmlims.timing import step_entry

from ..locks import row_lock
from ..models import CellBank, Culture, Harvest, Passage, Product, population_doublings
from .common import (
    change_apply,
    change_begin,
    refuse_if_voided,
    refuse_unknown,
    require_lab_staff,
    update_fields,
)
from .lots import harvest_volume_taken_ml
from .products import product_limits_in_force

CULTURE_FIELDS = {"code", "product", "bank", "started_at", "vessel", "medium_lot", "reagent_lots", "performed_at"}
PASSAGE_FIELDS = {
    "passage_number", "seeded_at", "harvested_at", "vessel", "medium_lot", "reagent_lots", "cells_seeded",
    "cells_harvested", "viability_percent", "confluence_percent", "performed_at",
}
HARVEST_FIELDS = {
    "conditioning_started_at", "conditioning_ended_at", "volume_ml", "viability_percent", "hold_temperature_c",
    "container", "performed_at",
}


def _wrong_state(obj, detail: str) -> Conflict:
    return Conflict(detail, code="wrong_order", conditions=[{"code": "wrong_order", "detail": detail}])


# --- cultures --------------------------------------------------------------------------------------------


@transaction.atomic
def culture_create(*, actor, product: Product, bank: CellBank, reason: str = "", **values) -> Culture:
    """Start a culture of ``bank`` for ``product``; the bank's donor must not be ineligible or withdrawn."""
    require_lab_staff(actor, "Starting a culture")
    refuse_unknown(values, CULTURE_FIELDS)
    errors: dict[str, list[str]] = {}
    if product.voided_at is not None:
        errors["product"] = [f"{product} is voided"]
    if bank.voided_at is not None:
        errors["bank"] = [f"{bank} is voided"]
    elif bank.vials_on_hand < 1:
        errors["bank"] = [f"{bank} has no vials on hand"]
    source = bank.source
    if source.eligibility_status == source.Eligibility.INELIGIBLE or source.consent_status == source.Consent.WITHDRAWN:
        errors.setdefault("bank", []).append(f"donor {source} is ineligible or has withdrawn consent")
    max_passage = product_limits_in_force(product).max_passage
    if bank.passage_at_freeze >= max_passage:
        errors.setdefault("bank", []).append(
            f"frozen at passage {bank.passage_at_freeze}; the product allows up to P{max_passage}")
    if errors:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), fields=errors)
    with step_entry(values.get("started_at"), field="started_at", reason=reason) as started_at:
        values["started_at"] = started_at
        values.setdefault("performed_at", started_at)
        culture = audited_create(Culture, actor=actor, reason=reason, product=product, bank=bank,
                                 performed_by=actor, **values)
        # One vial of the bank is thawed for the culture.
        locked_bank = row_lock(CellBank, bank.pk)
        audited_update(locked_bank, actor=actor, reason=f"thawed for culture {culture.code}",
                       vials_on_hand=locked_bank.vials_on_hand - 1)
    return culture


@transaction.atomic
def culture_update(*, culture: Culture, actor, reason: str = "", **values) -> Culture:
    culture = change_begin(culture, actor=actor, action="Changing a culture")
    allowed = {"vessel", "medium_lot", "reagent_lots", "started_at", "performed_at"}
    return update_fields(culture, allowed=allowed, values=values, actor=actor, reason=reason)


def _latest_passage(culture: Culture) -> Passage | None:
    return culture.passages.filter(voided_at__isnull=True).order_by("-passage_number").first()


@transaction.atomic
def culture_start_conditioning(
    *, culture: Culture, actor, confluence_percent: Decimal, started_at: datetime | None = None, reason: str = ""
) -> Culture:
    """active → conditioning (serum-free medium): needs a passage whose viability meets the product's minimum."""
    culture = change_begin(culture, actor=actor, action="Starting conditioning")
    if culture.status != Culture.Status.ACTIVE:
        raise _wrong_state(culture, f"culture {culture} is {culture.status}; conditioning starts from active")
    last = _latest_passage(culture)
    if last is None:
        raise _wrong_state(culture, f"culture {culture} has no passage recorded")
    min_viability = product_limits_in_force(culture.product).min_viability_percent
    if last.viability_percent < min_viability:
        raise _wrong_state(culture, f"viability at P{last.passage_number} is {last.viability_percent} %, below "
                                    f"the product's {min_viability} %")
    if confluence_percent is None or not (0 <= confluence_percent <= 100):
        raise field_error("confluence_percent", "must be between 0 and 100 %")
    with step_entry(started_at, field="started_at", reason=reason, previous=last.harvested_at,
                    previous_name=f"P{last.passage_number} ended") as started_at:
        return audited_update(culture, actor=actor, reason=reason, status=Culture.Status.CONDITIONING,
                              conditioning_started_at=started_at,
                              confluence_at_conditioning_percent=confluence_percent)


@transaction.atomic
def culture_close(*, culture: Culture, actor, reason: str, closed_at: datetime | None = None) -> Culture:
    require_lab_staff(actor, "Closing a culture")
    if not (reason or "").strip():
        raise field_error("reason", "say why the culture is closed")
    culture = row_lock(Culture, culture.pk)
    refuse_if_voided(culture)
    if culture.status == Culture.Status.CLOSED:
        raise _wrong_state(culture, f"culture {culture} is already closed")
    with step_entry(closed_at, field="closed_at", reason=reason, previous=culture.started_at,
                    previous_name="the culture's start") as when:
        return audited_update(culture, actor=actor, reason=reason, status=Culture.Status.CLOSED,
                              closed_at=when, closed_reason=reason)


# --- passages --------------------------------------------------------------------------------------------


def _passage_limits(culture: Culture, passage_number: int, pd: Decimal, previous: Passage | None) -> Decimal:
    """Check passage number and cumulative PD against the product; returns the cumulative PD."""
    product = product_limits_in_force(culture.product)  # the approved limits, not an unapproved edit
    errors: dict[str, list[str]] = {}
    floor = max(previous.passage_number if previous else 0, culture.bank.passage_at_freeze)
    if passage_number <= floor:
        errors["passage_number"] = [f"must be after P{floor} (the bank or the previous passage)"]
    if passage_number > product.max_passage:
        errors.setdefault("passage_number", []).append(f"over the product's limit of P{product.max_passage}")
    cumulative = (previous.cumulative_population_doublings if previous else Decimal("0")) + pd
    if cumulative > product.max_population_doublings:
        errors["population_doublings"] = [
            f"cumulative {cumulative} over the product's limit of {product.max_population_doublings}"]
    if errors:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), fields=errors)
    return cumulative


@transaction.atomic
def passage_record(*, culture: Culture, actor, reason: str = "", **values) -> Passage:
    """Record a passage; PD = log2(harvested/seeded) and the cumulative PD are computed and checked."""
    culture = change_begin(culture, actor=actor, action="Recording a passage", values=values, allowed=PASSAGE_FIELDS)
    if culture.status != Culture.Status.ACTIVE:
        raise _wrong_state(culture, f"culture {culture} is {culture.status}; passages are recorded while active")
    for name in ("cells_seeded", "cells_harvested"):
        if values.get(name) is None or values[name] < 1:
            raise field_error(name, "must be at least 1 cell")
    seeded_at = values.get("seeded_at")
    if seeded_at and seeded_at < culture.started_at:
        raise field_error("seeded_at", "is before the culture started")
    pd = population_doublings(values["cells_seeded"], values["cells_harvested"])
    cumulative = _passage_limits(culture, values.get("passage_number") or 0, pd, _latest_passage(culture))
    with step_entry(values.get("harvested_at"), field="harvested_at", reason=reason,
                    previous=seeded_at, previous_name="seeded at"):
        values.setdefault("performed_at", values.get("harvested_at") or timezone.now())
        return audited_create(Passage, actor=actor, reason=reason, culture=culture, performed_by=actor,
                              population_doublings=pd, cumulative_population_doublings=cumulative, **values)


@transaction.atomic
def passage_update(*, passage: Passage, actor, reason: str = "", **values) -> Passage:
    """Correct the latest passage of an active culture (earlier ones feed later cumulative PDs)."""
    passage = change_begin(passage, actor=actor, action="Changing a passage", values=values, allowed=PASSAGE_FIELDS)
    culture = passage.culture
    if culture.status != Culture.Status.ACTIVE or _latest_passage(culture).pk != passage.pk:
        raise _wrong_state(passage, "only the latest passage of an active culture can be corrected")
    merged = {f: values.get(f, getattr(passage, f)) for f in ("cells_seeded", "cells_harvested", "passage_number")}
    pd = population_doublings(merged["cells_seeded"], merged["cells_harvested"])
    previous = culture.passages.filter(voided_at__isnull=True, passage_number__lt=passage.passage_number) \
        .order_by("-passage_number").first()
    cumulative = _passage_limits(culture, merged["passage_number"], pd, previous)
    return change_apply(passage, actor=actor, reason=reason, population_doublings=pd,
                        cumulative_population_doublings=cumulative, **values)


# --- harvests --------------------------------------------------------------------------------------------


def _conditioning_window(product: Product, start: datetime, end: datetime) -> None:
    if end <= start:
        raise field_error("conditioning_ended_at", "must be after conditioning started")
    hours = Decimal((end - start).total_seconds()) / 3600
    product = product_limits_in_force(product)  # the approved limits, not an unapproved edit
    if not (product.conditioning_min_hours <= hours <= product.conditioning_max_hours):
        raise field_error(
            "conditioning_ended_at",
            f"conditioning of {hours:.1f} h is outside the product's {product.conditioning_min_hours}–"
            f"{product.conditioning_max_hours} h",
        )


@transaction.atomic
def harvest_record(*, culture: Culture, actor, reason: str = "", **values) -> Harvest:
    """Collect conditioned medium: the culture must be in conditioning (rule 1); numbered per culture."""
    culture = change_begin(culture, actor=actor, action="Recording a harvest", values=values, allowed=HARVEST_FIELDS)
    if culture.status != Culture.Status.CONDITIONING:
        raise _wrong_state(culture, f"culture {culture} is {culture.status}; a harvest needs a culture in conditioning")
    start, end = values.get("conditioning_started_at"), values.get("conditioning_ended_at")
    if start is None or end is None:
        raise field_error("conditioning_started_at" if start is None else "conditioning_ended_at", "is required")
    if start < culture.conditioning_started_at:
        raise field_error("conditioning_started_at", "is before the culture entered conditioning")
    _conditioning_window(culture.product, start, end)
    if values.get("volume_ml") is None or values["volume_ml"] <= 0:
        raise field_error("volume_ml", "must be greater than zero")
    last = culture.harvests.aggregate(m=Max("sequence"))["m"] or 0
    # The harvest is collected when conditioning ends: that is the step's time.
    with step_entry(end, field="conditioning_ended_at", reason=reason, previous=start,
                    previous_name="conditioning started"):
        values.setdefault("performed_at", end)
        return audited_create(Harvest, actor=actor, reason=reason, culture=culture, sequence=last + 1,
                              performed_by=actor,
                              max_hold_hours=product_limits_in_force(culture.product).max_hold_hours, **values)


@transaction.atomic
def harvest_update(*, harvest: Harvest, actor, reason: str = "", **values) -> Harvest:
    """Correct a harvest; its volume never drops below what lots already took from it."""
    harvest = change_begin(harvest, actor=actor, action="Changing a harvest", values=values, allowed=HARVEST_FIELDS)
    if "volume_ml" in values:
        taken = harvest_volume_taken_ml(harvest)
        if values["volume_ml"] is None or values["volume_ml"] < taken or values["volume_ml"] <= 0:
            raise field_error("volume_ml", f"must be greater than zero and at least the {taken} mL already pooled")
    start = values.get("conditioning_started_at", harvest.conditioning_started_at)
    end = values.get("conditioning_ended_at", harvest.conditioning_ended_at)
    _conditioning_window(harvest.culture.product, start, end)
    return update_fields(harvest, allowed=HARVEST_FIELDS, values=values, actor=actor, reason=reason)
