"""Lot services: pooling, processing, the one status transition entry point, signed status changes, void.

Contracts other apps rely on:

- ``lot_transition(*, lot, to, actor, reason="") -> CMLot``: locks the lot row, checks the
  role (403) and collects ALL unmet conditions (409 ``transition_not_allowed`` with ``conditions``), then
  writes the status and its "transitioned" audit entry in one transaction. ``released``/``rejected``/
  ``recalled`` are refused with 409 ``signature_required``; a held lot moves nowhere.
- ``lot_set_status_signed(*, lot, to, actor, reason, signature) -> CMLot``: ONLY for qc's sign-off services
  to reach released/rejected/recalled; validates the rule table's from-states, role, hold and guards and
  that ``signature`` (cmlims.esign Signature) signs this lot with the matching meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from cmlims import roles
from cmlims.audit import Action, audited_bulk_create, audited_create, audited_update, audited_void
from cmlims.exceptions import Conflict, InvalidInput, field_error
from cmlims.timing import step_entry

from ..lifecycle import HOLD, LOT_PIPELINE, RULES, UNHOLD
from ..locks import harvests_lock, lot_lock, lot_number_sequence_lock, lots_lock
from ..models import CMLot, Harvest, HarvestContribution, LotNumberSequence, LotStatus, Product
from .common import change_apply, refuse_if_voided, require_lab_staff, update_fields
from .products import product_limits_in_force
from .vials import vials_move_to_released_stock

STERILE_PORE_SIZE_UM = Decimal("0.22")


# --- lot numbers ------------------------------------------------------------------------------------------


def lot_number_next(*, when: datetime | None = None) -> str:
    """Site prefix + 2-digit year + 4-digit sequence per year (CM26-0042); call inside the pooling transaction.

    The counter row is locked, so two poolings never take the same number (on SQLite the IMMEDIATE
    transaction serialises them anyway).
    """
    prefix = settings.CMLIMS_SITE_PREFIX
    year = (when or timezone.now()).year
    counter = lot_number_sequence_lock(prefix=prefix, year=year)
    if counter is None:
        try:
            with transaction.atomic():  # savepoint: a concurrent first lot of the year may win the insert
                counter = LotNumberSequence.objects.create(prefix=prefix, year=year, last=0)
        except IntegrityError:
            counter = lot_number_sequence_lock(prefix=prefix, year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"{prefix}{year % 100:02d}-{counter.last:04d}"


# --- pooling ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contribution:
    harvest_id: int
    volume_ml: Decimal


def harvest_volume_taken_ml(harvest: Harvest) -> Decimal:
    """Volume already pooled from ``harvest`` into lots that are not voided."""
    taken = HarvestContribution.objects.filter(harvest=harvest, lot__voided_at__isnull=True).aggregate(
        total=Sum("volume_ml")
    )["total"]
    return taken or Decimal("0")


def _check_contributions(
    *, product: Product, contributions: list[Contribution], pooled_at: datetime, lot: CMLot | None = None
) -> dict[int, Harvest]:
    """Lock the harvests (in id order: no deadlock between two poolings) and check every rule, naming fields."""
    if not contributions:
        raise field_error("contributions", "pool at least one harvest")
    errors: dict[str, list[str]] = {}
    seen: set[int] = set()
    for i, item in enumerate(contributions):
        name = f"contributions[{i}]"
        if item.harvest_id in seen:
            errors.setdefault(f"{name}.harvest", []).append("a harvest joins a given lot once")
        seen.add(item.harvest_id)
        if item.volume_ml is None or item.volume_ml <= 0:
            errors.setdefault(f"{name}.volume_ml", []).append("must be greater than zero")
    if errors:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), fields=errors)

    harvests = {h.pk: h for h in harvests_lock(seen)}
    for i, item in enumerate(contributions):
        name = f"contributions[{i}]"
        harvest = harvests.get(item.harvest_id)
        if harvest is None:
            errors.setdefault(f"{name}.harvest", []).append(f"harvest {item.harvest_id} does not exist")
            continue
        if harvest.voided_at is not None:
            errors.setdefault(f"{name}.harvest", []).append(f"harvest {harvest} is voided")
        if harvest.culture.product_id != product.pk:
            errors.setdefault(f"{name}.harvest", []).append(
                f"harvest {harvest} comes from a culture for another product")
        if lot is not None and HarvestContribution.objects.filter(lot=lot, harvest=harvest).exists():
            errors.setdefault(f"{name}.harvest", []).append(f"harvest {harvest} is already in lot {lot}")
        if pooled_at < harvest.conditioning_ended_at:
            errors.setdefault("pooled_at", []).append(f"is before harvest {harvest} was collected")
        else:
            held_hours = Decimal((pooled_at - harvest.conditioning_ended_at).total_seconds()) / 3600
            # The limit is the product's approved master data in force at pooling (not an unapproved edit).
            hold_limit = product_limits_in_force(product).max_hold_hours
            if held_hours > hold_limit:
                errors.setdefault(f"{name}.harvest", []).append(
                    f"harvest {harvest} was held {held_hours:.1f} h, longer than the product's "
                    f"{hold_limit} h limit")
        available = harvest.volume_ml - harvest_volume_taken_ml(harvest)
        if item.volume_ml > available:
            errors.setdefault(f"{name}.volume_ml", []).append(
                f"harvest {harvest} has only {available} mL left of {harvest.volume_ml} mL")
    if errors:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), fields=errors)
    return harvests


@transaction.atomic
def lot_pool(
    *, product: Product, contributions: list[Contribution], actor, pooled_at: datetime | None = None,
    reason: str = "",
) -> CMLot:
    """Create a lot by pooling volumes from harvests; the lot number is assigned here."""
    require_lab_staff(actor, "Pooling harvests into a lot")
    if product.voided_at is not None:
        raise field_error("product", f"{product} is voided")
    # Not before any harvest was collected: checked with the harvests, under their locks.
    with step_entry(pooled_at, field="pooled_at", reason=reason) as pooled_at:
        _check_contributions(product=product, contributions=contributions, pooled_at=pooled_at)
        lot = audited_create(
            CMLot, actor=actor, reason=reason,
            lot_number=lot_number_next(when=pooled_at), product=product, status=LotStatus.POOLED,
            status_changed_at=timezone.now(), pooled_at=pooled_at, pooled_by=actor,
            volume_in_ml=sum((c.volume_ml for c in contributions), Decimal("0")),
        )
        audited_bulk_create(
            HarvestContribution,
            [HarvestContribution(lot=lot, harvest_id=c.harvest_id, volume_ml=c.volume_ml, added_by=actor)
             for c in contributions],
            actor=actor, reason=reason,
        )
    return lot


def _require_status(lot: CMLot, *allowed: str, step: str) -> None:
    refuse_if_voided(lot)
    if lot.status not in allowed:
        raise Conflict(
            f"{step} is recorded while the lot is {' or '.join(allowed)}; lot {lot} is {lot.status}",
            code="wrong_status",
            conditions=[{"code": "wrong_status", "detail": f"lot {lot} is {lot.status}"}],
        )


def _pooled_lot_begin(lot: CMLot, *, actor, action: str, step: str) -> CMLot:
    """How a step on a lot still only pooled starts: lab staff (403), the lot locked (404), pooled (409)."""
    require_lab_staff(actor, action)
    lot = lot_lock(lot)
    _require_status(lot, LotStatus.POOLED, step=step)
    return lot


@transaction.atomic
def lot_contribution_add(*, lot: CMLot, harvest_id: int, volume_ml: Decimal, actor, reason: str = "") -> CMLot:
    """Add one more harvest to a lot that is still only pooled (before filtration)."""
    lot = _pooled_lot_begin(lot, actor=actor, action="Adding a harvest to a pool", step="Pooling")
    if lot.filtration_performed_by_id:
        raise Conflict("the lot is already filtered; harvests can no longer be added", code="wrong_status",
                       conditions=[{"code": "already_filtered", "detail": f"lot {lot} is filtered"}])
    item = Contribution(harvest_id=harvest_id, volume_ml=volume_ml)
    _check_contributions(product=lot.product, contributions=[item], pooled_at=lot.pooled_at, lot=lot)
    audited_create(HarvestContribution, actor=actor, reason=reason, lot=lot, harvest_id=harvest_id,
                   volume_ml=volume_ml, added_by=actor)
    return change_apply(lot, actor=actor, reason=reason, volume_in_ml=lot.volume_in_ml + volume_ml)


# --- processing ------------------------------------------------------------------------------------------


def integrity_test_passes(method: str, limit_bar: Decimal, measured_bar: Decimal) -> bool:
    """Bubble point must reach the limit; a pressure-hold decay must stay within it."""
    if method == CMLot.IntegrityTest.BUBBLE_POINT:
        return measured_bar >= limit_bar
    return measured_bar <= limit_bar


@transaction.atomic
def lot_record_filtration(
    *, lot: CMLot, actor, filter_pore_size_um: Decimal, filter_lot: str, integrity_test_method: str,
    integrity_test_limit_bar: Decimal, integrity_test_measured_bar: Decimal, volume_filtered_ml: Decimal,
    filtered_at: datetime | None = None, reason: str = "",
) -> CMLot:
    """Sterile filtration with its filter integrity test; a failed test is recorded and blocks drying."""
    lot = _pooled_lot_begin(lot, actor=actor, action="Recording filtration", step="Filtration")
    if lot.concentration_performed_by_id:
        raise Conflict("the lot is already concentrated; filtration cannot be re-recorded", code="wrong_status",
                       conditions=[{"code": "already_concentrated", "detail": f"lot {lot} is concentrated"}])
    if filter_pore_size_um is not None and filter_pore_size_um > STERILE_PORE_SIZE_UM:
        raise field_error("filter_pore_size_um",
                          f"sterile filtration needs a pore size of at most {STERILE_PORE_SIZE_UM} µm")
    if integrity_test_method not in CMLot.IntegrityTest.values:
        raise field_error("integrity_test_method", f"must be one of: {', '.join(CMLot.IntegrityTest.values)}")
    for name, value in (("integrity_test_limit_bar", integrity_test_limit_bar),
                        ("integrity_test_measured_bar", integrity_test_measured_bar)):
        if value is None:
            raise field_error(name, "is required")
    with step_entry(filtered_at, field="filtered_at", reason=reason, previous=lot.pooled_at,
                    previous_name="pooling") as filtered_at:
        return audited_update(
            lot, actor=actor, reason=reason,
            filter_pore_size_um=filter_pore_size_um, filter_lot=filter_lot,
            filtered_at=filtered_at, filtration_performed_by=actor,
            filtration_verified_by=None, filtration_verified_at=None,
            integrity_test_method=integrity_test_method, integrity_test_limit_bar=integrity_test_limit_bar,
            integrity_test_measured_bar=integrity_test_measured_bar,
            integrity_test_passed=integrity_test_passes(integrity_test_method, integrity_test_limit_bar,
                                                        integrity_test_measured_bar),
            volume_filtered_ml=volume_filtered_ml,
        )


def yield_percent(*, volume_in_ml: Decimal, volume_out_ml: Decimal, concentration_factor: Decimal) -> Decimal:
    """Share of the pooled medium recovered: a 10× concentrate of 50 mL from 500 mL is a 100 % yield."""
    if not volume_in_ml:
        return Decimal("0")
    return (volume_out_ml * concentration_factor * 100 / volume_in_ml).quantize(Decimal("0.01"))


@transaction.atomic
def lot_record_concentration(
    *, lot: CMLot, actor, concentration_cutoff_kda: Decimal, concentration_factor: Decimal,
    volume_out_ml: Decimal, concentrated_at: datetime | None = None, reason: str = "",
) -> CMLot:
    """Ultrafiltration to the bulk: cut-off, factor, volume out; computes the lot's yield."""
    lot = _pooled_lot_begin(lot, actor=actor, action="Recording concentration", step="Concentration")
    if lot.integrity_test_passed is None:
        raise Conflict("record filtration first", code="wrong_order",
                       conditions=[{"code": "filtration_missing", "detail": "filtration is not recorded"}])
    if volume_out_ml is None or volume_out_ml <= 0:
        raise field_error("volume_out_ml", "must be greater than zero")
    if concentration_factor is None or concentration_factor < 1:
        raise field_error("concentration_factor", "must be at least 1")
    if volume_out_ml * concentration_factor > (lot.volume_filtered_ml or lot.volume_in_ml) * Decimal("1.05"):
        # Volume out × factor cannot much exceed what went in (5 % allows for measurement error).
        raise field_error("volume_out_ml", f"{volume_out_ml} mL at {concentration_factor}× is more than the "
                          f"{lot.volume_filtered_ml or lot.volume_in_ml} mL filtered")
    with step_entry(concentrated_at, field="concentrated_at", reason=reason, previous=lot.filtered_at,
                    previous_name="filtration") as concentrated_at:
        return audited_update(
            lot, actor=actor, reason=reason,
            concentration_cutoff_kda=concentration_cutoff_kda, concentration_factor=concentration_factor,
            volume_out_ml=volume_out_ml, concentrated_at=concentrated_at,
            concentration_performed_by=actor, concentration_verified_by=None, concentration_verified_at=None,
            yield_percent=yield_percent(volume_in_ml=lot.volume_in_ml, volume_out_ml=volume_out_ml,
                                        concentration_factor=concentration_factor),
        )


LOT_STEPS = {
    # step: (performed_by field, verified_by field, verified_at field)
    "pooling": ("pooled_by_id", "pool_verified_by", "pool_verified_at"),
    "filtration": ("filtration_performed_by_id", "filtration_verified_by", "filtration_verified_at"),
    "concentration": ("concentration_performed_by_id", "concentration_verified_by", "concentration_verified_at"),
}


@transaction.atomic
def lot_step_verify(*, lot: CMLot, step: str, actor, reason: str = "") -> CMLot:
    """Second-person verification of a lot step (pooling, filtration, concentration): never the performer."""
    require_lab_staff(actor, "Verifying a manufacturing step")
    if step not in LOT_STEPS:
        raise field_error("step", f"must be one of: {', '.join(LOT_STEPS)}")
    lot = lot_lock(lot)
    refuse_if_voided(lot)
    performer_field, verified_by, verified_at = LOT_STEPS[step]
    performer = getattr(lot, performer_field)
    if performer is None:
        raise Conflict(f"{step} is not recorded yet", code="wrong_order",
                       conditions=[{"code": f"{step}_missing", "detail": f"{step} is not recorded"}])
    if performer == actor.pk:
        raise Conflict(f"{step} must be verified by a second person, not by who performed it",
                       code="same_person", conditions=[{"code": "same_person", "detail": "performer cannot verify"}])
    if getattr(lot, f"{verified_by}_id"):
        raise Conflict(f"{step} is already verified", code="already_verified",
                       conditions=[{"code": "already_verified", "detail": f"{step} is already verified"}])
    return audited_update(lot, actor=actor, reason=reason, **{verified_by: actor, verified_at: timezone.now()})


LOT_EDITABLE_WHILE_POOLED = {"filter_lot", "filtered_at", "concentrated_at", "concentration_cutoff_kda"}


@transaction.atomic
def lot_update(*, lot: CMLot, actor, reason: str = "", **values) -> CMLot:
    """Correct descriptive fields of a lot still in processing (quantities go through their step services)."""
    lot = _pooled_lot_begin(lot, actor=actor, action="Changing a lot", step="Changing processing details")
    return update_fields(lot, allowed=LOT_EDITABLE_WHILE_POOLED, values=values, actor=actor, reason=reason)


@transaction.atomic
def lot_void(*, lot: CMLot, actor, reason: str) -> CMLot:
    """Void a lot recorded in error; only before freeze-drying. Its harvest volume becomes available again."""
    lot = _pooled_lot_begin(lot, actor=actor, action="Voiding a lot", step="Voiding")
    return audited_void(lot, actor=actor, reason=reason)


# --- status transitions ----------------------------------------------------------------------------------


def _rule_for(to: str):
    rule = RULES.get(to)
    if rule is None:
        raise field_error("to", f"unknown status {to!r}; one of: {', '.join(RULES)}")
    return rule


def _apply(lot: CMLot, to: str, *, actor, reason: str) -> CMLot:
    return audited_update(
        lot, actor=actor, reason=reason, action=Action.TRANSITIONED, clean=False,
        status=to, status_changed_at=timezone.now(),
    )


@transaction.atomic
def lot_transition(*, lot: CMLot, to: str, actor, reason: str = "") -> CMLot:
    """THE entry point for unsigned lot status changes (see module docstring)."""
    rule = _rule_for(to)
    lot = lot_lock(lot)
    if rule.signed:
        raise Conflict(
            f"{to} needs a QC officer's electronic signature (sign-off), not a plain transition",
            code="signature_required",
            conditions=[{"code": "signature_required", "detail": f"{to} is reached only through signed sign-off"}],
        )
    if rule.automatic:
        raise Conflict(f"{to} is set automatically", code="transition_not_allowed",
                       conditions=[{"code": "automatic", "detail": f"{to} is set by the system when due"}])
    roles.require_role(actor, rule.roles, f"Moving a lot to {to}")
    LOT_PIPELINE.check(lot, to, actor)
    return _apply(lot, to, actor=actor, reason=reason)


@transaction.atomic
def lot_set_status_signed(*, lot: CMLot, to: str, actor, reason: str, signature) -> CMLot:
    """Reach released/rejected/recalled; ONLY for qc's sign-off services, after they recorded ``signature``."""
    rule = _rule_for(to)
    if not rule.signed:
        raise field_error("to", f"{to} is reached with lot_transition, not a signature")
    lot = lot_lock(lot)
    roles.require_role(actor, rule.roles, f"Moving a lot to {to}")
    problems = []
    if signature is None or signature.signer_id != actor.pk or signature.meaning != to or (
        signature.object_id != str(lot.pk) or signature.content_type.model_class() is not CMLot
    ):
        problems.append({"code": "signature_mismatch",
                         "detail": f"the signature is not {actor}'s '{to}' signature of lot {lot.lot_number}"})
    conditions = problems + LOT_PIPELINE.unmet_conditions(lot, to, actor)
    if conditions:
        raise LOT_PIPELINE.refusal(lot, to, conditions)
    lot = _apply(lot, to, actor=actor, reason=reason)
    if to == LotStatus.RELEASED:  # released stock leaves the quarantine store (lot locked first, then vials)
        vials_move_to_released_stock(lot=lot, actor=actor, reason=f"lot {lot.lot_number} released: to released stock")
    return lot


@transaction.atomic
def lot_set_hold(*, lot: CMLot, on_hold: bool, actor, reason: str) -> CMLot:
    """THE entry point for a lot's hold flag (``hold``/``unhold`` in the pipeline): lock, role, every unmet
    condition, then the change with its audit entry. The caller checked that ``reason`` is given."""
    to = HOLD if on_hold else UNHOLD
    roles.require_role(actor, LOT_PIPELINE.rule(to).roles, "Putting a lot on hold" if on_hold else "Lifting a hold")
    lot = lot_lock(lot)
    LOT_PIPELINE.check(lot, to, actor)
    held = {"hold_reason": reason.strip(), "held_at": timezone.now(), "held_by": actor} if on_hold else {
        "hold_reason": "", "held_at": None, "held_by": None}
    # clean=False: a hold must always be possible, whatever else about the lot is still incomplete.
    return audited_update(lot, actor=actor, reason=reason, clean=False, on_hold=on_hold, **held)


@transaction.atomic
def lots_expire_due(*, today: date | None = None) -> list[str]:
    """Move released lots past their expiry to ``expired`` (the periodic task; no user acts)."""
    today = today or timezone.now().date()
    due = lots_lock(CMLot.objects.filter(status=LotStatus.RELEASED, expiry__lt=today, voided_at__isnull=True))
    for lot in due:
        _apply(lot, LotStatus.EXPIRED, actor=None, reason=f"shelf life ended on {lot.expiry}")
    return [lot.lot_number for lot in due]


__all__ = [
    "Contribution", "harvest_volume_taken_ml", "lot_contribution_add", "lot_number_next", "lot_pool",
    "lot_record_concentration", "lot_record_filtration", "lot_set_hold", "lot_set_status_signed", "lot_step_verify",
    "lot_transition", "lot_update", "lot_void", "lots_expire_due", "yield_percent",
]
