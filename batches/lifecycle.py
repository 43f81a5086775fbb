"""The CM lot status pipeline as data (DESIGN.md "Lot lifecycle"), plus the guards that other apps add.

Contract (other apps rely on it):

- ``RULES``: ``{to_status: Rule}``; a Rule names the statuses it may be reached from, the roles allowed,
  whether it needs an electronic signature (only ``lot_set_status_signed`` may apply it) and whether it
  is automatic (the expiry task, no user).
- ``register_guard(to_status, fn)``: ``fn(lot, actor) -> list[{"code": str, "detail": str}]`` returns
  the unmet preconditions for moving ``lot`` to ``to_status`` (empty list = fine). Register from your
  AppConfig.ready(); e.g. qc registers "every mandatory item has an approved result" for ``qc_complete``.
  Guards run inside the transition's transaction with the lot row locked.
- ``unmet_conditions(lot, to_status, actor)`` gathers EVERY unmet condition (state, hold, void, built-in
  manufacturing guards, registered guards) so one refusal lists all of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from cmlims import roles

from .models import CMLot, LotStatus

Condition = dict[str, str]
Guard = Callable[[CMLot, object], list[Condition]]

S = LotStatus


@dataclass(frozen=True)
class Rule:
    to: str
    from_statuses: frozenset[str]
    roles: frozenset[str]
    signed: bool = False
    automatic: bool = False
    description: str = ""


RULES: dict[str, Rule] = {
    rule.to: rule
    for rule in (
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
    )
}

_guards: dict[str, list[Guard]] = defaultdict(list)


def register_guard(to_status: str, fn: Guard) -> None:
    """Add a precondition for reaching ``to_status``; ``fn(lot, actor) -> [{"code", "detail"}]``.

    Registering the same function twice (e.g. ``ready()`` running again in tests) has no effect.
    """
    if to_status not in RULES:
        raise ValueError(f"unknown lot status {to_status!r}; known: {', '.join(RULES)}")
    if fn not in _guards[to_status]:
        _guards[to_status].append(fn)


def registered_guards(to_status: str) -> list[Guard]:
    return list(_guards.get(to_status, ()))


def allowed_targets(status: str) -> list[str]:
    """Statuses reachable from ``status`` by some rule (for the admin's actions and the API)."""
    return [to for to, rule in RULES.items() if status in rule.from_statuses]


def unmet_conditions(lot: CMLot, to_status: str, actor) -> list[Condition]:
    """Every reason ``lot`` cannot move to ``to_status`` now (roles are checked separately: 403, not 409)."""
    rule = RULES[to_status]
    conditions: list[Condition] = []
    if lot.voided_at is not None:
        conditions.append({"code": "voided", "detail": f"lot {lot.lot_number} is voided"})
    if lot.status not in rule.from_statuses:
        allowed = ", ".join(sorted(rule.from_statuses))
        conditions.append({
            "code": "wrong_status",
            "detail": f"lot {lot.lot_number} is {lot.status}; {to_status} can only be reached from {allowed}",
        })
    if lot.on_hold:
        conditions.append({"code": "on_hold", "detail": f"lot {lot.lot_number} is on hold: {lot.hold_reason}"})
    for guard in [*_builtin_guards.get(to_status, ()), *registered_guards(to_status)]:
        conditions.extend(guard(lot, actor))
    return conditions


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


_builtin_guards: dict[str, list[Guard]] = {
    S.FREEZE_DRYING: [_processing_complete],
    S.PACKAGED: [_drying_and_packaging_complete],
    S.QC_COMPLETE: [_packaging_verified],
}
