"""The lot and vial status pipelines, declared once on ``cmlims.pipeline`` (DESIGN.md "Lot lifecycle").

Contract (other apps rely on it):

- ``LOT_PIPELINE``: the lot's rules, by target. Status targets (``moves``) are reached through
  ``lot_transition`` (unsigned) or ``lot_set_status_signed`` (released/rejected/recalled, qc's sign-off);
  ``hold`` and ``unhold`` gate on the status but set the hold flag (``qc.services.hold``); ``expired`` is
  automatic (the periodic task, no user).
- ``register_guard(to, fn)``: ``fn(lot, actor) -> list[{"code": str, "detail": str}]`` returns the unmet
  preconditions for moving ``lot`` to ``to`` (empty list = fine). Register from your AppConfig.ready(); e.g.
  qc registers "every mandatory item has an approved result" for ``qc_complete``. Guards run inside the
  transition's transaction with the lot row locked.
- ``unmet_conditions(lot, to, actor)`` gathers EVERY unmet condition (void, state, hold, built-in
  manufacturing guards, registered guards) so one refusal lists all of them.
- ``VIAL_PIPELINE``: available → allocated → shipped → received; allocated → available (taken out of a
  draft shipment); available | allocated → destroyed. Written only by ``vials_set_status``.
"""

from __future__ import annotations

from cmlims import roles
from cmlims.pipeline import Condition, Guard, Pipeline, Rule

from .models import CMLot, LotStatus, Vial, VialStatus

S = LotStatus
HOLD, UNHOLD = "hold", "unhold"

# A lot that is finished (rejected, recalled, expired) is not held: there is nothing left to stop.
NOT_HOLDABLE = frozenset({S.REJECTED, S.RECALLED, S.EXPIRED})


def _lot_subject(lot: CMLot) -> str:
    return f"lot {lot.lot_number}"


def _lot_voided(lot: CMLot, rule: Rule) -> list[Condition]:
    if lot.voided_at is not None and rule.to != UNHOLD:
        return [{"code": "voided", "detail": f"lot {lot.lot_number} is voided"}]
    return []


# A hold stops a lot until a question is answered; it must not delay bad news (README "QC and sign-off").
HOLD_DOES_NOT_BLOCK = frozenset({S.REJECTED, S.RECALLED})


def _lot_on_hold(lot: CMLot, rule: Rule) -> list[Condition]:
    """A held lot moves nowhere but to rejected or recalled (hold and unhold themselves say "already on hold"
    / "not on hold")."""
    if rule.moves and lot.on_hold and rule.to not in HOLD_DOES_NOT_BLOCK:
        return [{"code": "on_hold", "detail": f"lot {lot.lot_number} is on hold: {lot.hold_reason}"}]
    return []


def _lot_wrong_status(pipeline: Pipeline, lot: CMLot, rule: Rule) -> Condition:
    if not rule.moves:
        return {"code": "wrong_status", "detail": f"lot {lot.lot_number} is {lot.status}"}
    allowed = ", ".join(sorted(rule.from_states))
    return {"code": "wrong_status",
            "detail": f"lot {lot.lot_number} is {lot.status}; {rule.to} can only be reached from {allowed}"}


LOT_PIPELINE = Pipeline(
    "lot",
    object_type="batches.cmlot",
    rules=[
        Rule(S.FREEZE_DRYING, frozenset({S.POOLED}), frozenset({roles.LAB_STAFF}),
             description="processed lot loaded into the freeze-dryer"),
        Rule(S.PACKAGED, frozenset({S.FREEZE_DRYING}), frozenset({roles.LAB_STAFF}),
             description="freeze-dried vials packaged; the lot is in quarantine"),
        Rule(S.QC_COMPLETE, frozenset({S.PACKAGED}), frozenset({roles.QC_OFFICER}),
             description="every mandatory QC item has an approved result"),
        Rule(S.REJECTED, frozenset({S.PACKAGED, S.QC_COMPLETE}), frozenset({roles.QC_OFFICER}), signed=True,
             description="rejected by a QC officer's electronic signature"),
        Rule(S.RELEASED, frozenset({S.QC_COMPLETE}), frozenset({roles.QC_OFFICER}), signed=True,
             description="released by a QC officer's electronic signature (rule 3)"),
        Rule(S.RECALLED, frozenset({S.RELEASED}), frozenset({roles.QC_OFFICER}), signed=True,
             description="recalled by a QC officer's electronic signature"),
        Rule(S.EXPIRED, frozenset({S.RELEASED}), frozenset(), automatic=True,
             description="shelf life ended (periodic task)"),
        Rule(HOLD, frozenset(S.values) - NOT_HOLDABLE, frozenset({roles.QC_OFFICER}), moves=False,
             refusal_code="hold_refused", refusal_message="{subject} cannot be put on hold: {details}",
             description="put on hold with a reason: the lot moves nowhere and ships nothing"),
        Rule(UNHOLD, frozenset(S.values), frozenset({roles.QC_OFFICER}), moves=False,
             refusal_code="not_on_hold", refusal_message="{details}",
             description="hold lifted with a reason"),
    ],
    subject=_lot_subject,
    before_state=_lot_voided,
    after_state=_lot_on_hold,
    state_condition=_lot_wrong_status,
)

# The status rules alone, by target (what ``lot_transition`` and the sign-off may reach).
RULES: dict[str, Rule] = {to: rule for to, rule in LOT_PIPELINE.rules.items() if rule.moves}
LOT_STATUS_TARGETS = tuple(LOT_PIPELINE.targets(signed=None, automatic=None))


def register_guard(to_status: str, fn: Guard) -> None:
    """Add a precondition for reaching ``to_status``; ``fn(lot, actor) -> [{"code", "detail"}]``."""
    LOT_PIPELINE.register_guard(to_status, fn)


def allowed_targets(status: str) -> list[str]:
    """Statuses reachable from ``status`` by some rule (for the admin's actions and the API)."""
    return LOT_PIPELINE.allowed_targets(status)


def unmet_conditions(lot: CMLot, to_status: str, actor) -> list[Condition]:
    """Every reason ``lot`` cannot move to ``to_status`` now (roles are checked separately: 403, not 409)."""
    return LOT_PIPELINE.unmet_conditions(lot, to_status, actor)


def _already_on_hold(lot: CMLot, actor) -> list[Condition]:
    if lot.on_hold:
        return [{"code": "already_on_hold", "detail": f"lot {lot.lot_number} is on hold: {lot.hold_reason}"}]
    return []


def _not_on_hold(lot: CMLot, actor) -> list[Condition]:
    if not lot.on_hold:
        return [{"code": "not_on_hold", "detail": f"lot {lot.lot_number} is not on hold"}]
    return []


V = VialStatus


def _vial_wrong_status(pipeline: Pipeline, vial: Vial, rule: Rule) -> Condition:
    return {"code": "wrong_status", "detail": f"is {vial.status}"}


VIAL_PIPELINE = Pipeline(
    "vial",
    object_type="batches.vial",
    routine_fields=frozenset({"status", "storage_location_id"}),  # released vials move to released stock
    rules=[
        Rule(V.ALLOCATED, frozenset({V.AVAILABLE}), frozenset({roles.SHIPPING_COORDINATOR}),
             refusal_code="vials_refused", description="allocated to a draft shipment"),
        Rule(V.AVAILABLE, frozenset({V.ALLOCATED}), frozenset({roles.SHIPPING_COORDINATOR}),
             refusal_code="vials_refused", description="taken out of a draft shipment, or its shipment cancelled"),
        Rule(V.SHIPPED, frozenset({V.ALLOCATED}), frozenset({roles.SHIPPING_COORDINATOR}),
             refusal_code="vials_refused", description="its shipment handed to the courier"),
        Rule(V.RECEIVED, frozenset({V.SHIPPED}), frozenset({roles.SHIPPING_COORDINATOR}),
             refusal_code="vials_refused", description="its shipment's receipt confirmed by the consignee"),
        Rule(V.DESTROYED, frozenset({V.AVAILABLE, V.ALLOCATED}), frozenset({roles.LAB_STAFF}),
             refusal_code="wrong_status", description="destroyed with a reason (breakage, sampling, expiry)"),
    ],
    subject=lambda vial: f"vial {vial.serial}",
    state_condition=_vial_wrong_status,
)


# --- built-in manufacturing guards (rule 1: steps happen in order; 211.188(b): verified where required) ----


def _needs_verification(lot: CMLot) -> bool:
    return lot.product.requires_second_person_verification


def _processing_complete(lot: CMLot, actor) -> list[Condition]:
    out: list[Condition] = []
    if lot.integrity_test_passed is None:
        out.append({"code": "filtration_missing", "detail": "filtration with its integrity test is not recorded"})
    elif not lot.integrity_test_passed:
        out.append({"code": "filter_integrity_failed", "detail": "the filter integrity test failed"})
    if lot.volume_out_ml is None:
        out.append({"code": "concentration_missing", "detail": "concentration (volume out) is not recorded"})
    run = getattr(lot, "lyophilisation_run", None) if lot.pk else None
    if run is None or run.voided_at is not None:
        out.append({"code": "dryer_not_loaded", "detail": "no freeze-drying run has been loaded for this lot"})
    if _needs_verification(lot):
        for label, done, verified in (
            ("pooling", True, lot.pool_verified_by_id),
            ("filtration", lot.filtration_performed_by_id, lot.filtration_verified_by_id),
            ("concentration", lot.concentration_performed_by_id, lot.concentration_verified_by_id),
        ):
            if done and not verified:
                out.append({"code": "verification_missing",
                            "detail": f"{label} has not been verified by a second person"})
        unverified = lot.contributions.filter(harvest__verified_by__isnull=True).count()
        if unverified:
            out.append({"code": "verification_missing",
                        "detail": f"{unverified} pooled harvest(s) not verified by a second person"})
    return out


def _drying_and_packaging_complete(lot: CMLot, actor) -> list[Condition]:
    out: list[Condition] = []
    run = getattr(lot, "lyophilisation_run", None)
    if run is None or not run.is_complete:
        out.append({"code": "drying_incomplete", "detail": "the freeze-drying run is not completed"})
    elif _needs_verification(lot) and not run.verified_by_id:
        out.append({"code": "verification_missing", "detail": "the freeze-drying run has not been verified"})
    if getattr(lot, "packaging_run", None) is None:
        out.append({"code": "packaging_missing", "detail": "no packaging run is recorded"})
    return out


def _packaging_verified(lot: CMLot, actor) -> list[Condition]:
    run = getattr(lot, "packaging_run", None)
    if run is not None and _needs_verification(lot) and not run.verified_by_id:
        return [{"code": "verification_missing", "detail": "the packaging run has not been verified"}]
    return []


for _to, _guard in ((S.FREEZE_DRYING, _processing_complete), (S.PACKAGED, _drying_and_packaging_complete),
                    (S.QC_COMPLETE, _packaging_verified), (HOLD, _already_on_hold), (UNHOLD, _not_on_hold)):
    LOT_PIPELINE.register_guard(_to, _guard)
