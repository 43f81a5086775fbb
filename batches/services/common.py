"""Helpers the manufacturing services share: role checks, locking, step times and field updates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from cmlims import roles
from cmlims.audit import audited_create, audited_update, diff, snapshot
from cmlims.exceptions import Conflict, InvalidInput, field_error

from ..locks import row_lock
from ..models import CMLot, PerformedStep

M = TypeVar("M", bound=models.Model)


def require_lab_staff(actor, action: str) -> None:
    roles.require_role(actor, roles.LAB_STAFF, action)


def refuse_if_voided(obj: models.Model) -> None:
    if getattr(obj, "voided_at", None) is not None:
        raise Conflict(f"{obj} is voided", code="voided",
                       conditions=[{"code": "voided", "detail": f"{obj} is voided: {obj.void_reason}"}])


def step_time(value: datetime | None, field: str) -> datetime:
    """When the step happened (defaults to now); must be timezone-aware (stored in UTC)."""
    if value is None:
        return timezone.now()
    if timezone.is_naive(value):
        raise field_error(field, "must include a time zone (times are stored in UTC)")
    return value


def refuse_unknown(values: dict[str, Any], allowed: Iterable[str]) -> None:
    """Name every field a caller may not set here (400), instead of silently ignoring it."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidInput(
            "; ".join(f"{name}: cannot be set here" for name in unknown),
            fields={name: ["cannot be set here"] for name in unknown},
        )


# What each of a lot's own verifications covers (``<prefix>_by`` / ``<prefix>_at``): a later change to one of
# these fields clears that verification. Other records have one step, covered whole by ``verified_by``.
LOT_VERIFICATIONS: dict[str, tuple[str, ...]] = {
    "pool_verified": ("pooled_at", "volume_in_ml"),
    "filtration_verified": ("filter_pore_size_um", "filter_lot", "filtered_at", "integrity_test_method",
                            "integrity_test_limit_bar", "integrity_test_measured_bar", "integrity_test_passed",
                            "volume_filtered_ml"),
    "concentration_verified": ("concentration_cutoff_kda", "concentration_factor", "concentrated_at",
                               "volume_out_ml", "yield_percent"),
}


def _verifications_invalidated(record: models.Model, changed: set[str]) -> list[str]:
    """The verification prefixes a change of ``changed`` (attnames) invalidates on ``record``."""
    if isinstance(record, CMLot):
        return [prefix for prefix, fields in LOT_VERIFICATIONS.items()
                if getattr(record, f"{prefix}_by_id") and changed & set(fields)]
    if isinstance(record, PerformedStep) and record.verified_by_id and changed - {"verified_by_id", "verified_at"}:
        return ["verified"]
    return []


def verification_clear(record: M, *, actor, changed: set[str], reason: str = "") -> M:
    """A second person verified what the record said then, not what it says now (211.188(b)): a content
    change clears the verification it invalidates, in an entry of its own that says so, so every rule that
    needs the step verified sees it unverified until a second person verifies it again."""
    prefixes = _verifications_invalidated(record, changed)
    if not prefixes:
        return record
    why = f"verification cleared: {', '.join(sorted(changed))} changed after it was verified"
    return audited_update(record, actor=actor, reason=f"{why} ({reason})" if reason.strip() else why, clean=False,
                          **{f"{prefix}_{part}": None for prefix in prefixes for part in ("by", "at")})


def change_apply(obj: M, *, actor, reason: str = "", **values: Any) -> M:
    """THE way a recorded row's content changes: the audited update, then the verification it invalidates
    cleared (``verification_clear``)."""
    before = snapshot(obj)
    obj = audited_update(obj, actor=actor, reason=reason, **values)
    return verification_clear(obj, actor=actor, changed=set(diff(before, snapshot(obj))), reason=reason)


def update_fields(obj: M, *, allowed: Iterable[str], values: dict[str, Any], actor, reason: str = "") -> M:
    """Change only ``allowed`` fields (others are refused by name) through ``change_apply``."""
    refuse_unknown(values, allowed)
    return change_apply(obj, actor=actor, reason=reason, **values)


def change_begin(record: M, *, actor, action: str, values: dict[str, Any] | None = None,
                 allowed: Iterable[str] | None = None) -> M:
    """How every lab-staff change to a recorded row starts, in this order: the role (403), the fields the
    caller may set (400, when ``allowed`` is given), the row re-read under its lock (404), not voided (409)."""
    require_lab_staff(actor, action)
    if allowed is not None:
        refuse_unknown(values or {}, allowed)
    record = row_lock(type(record), record.pk)
    refuse_if_voided(record)
    return record


def record_create(model: type[M], *, actor, action: str, allowed: Iterable[str], values: dict[str, Any],
                  reason: str = "", **fixed: Any) -> M:
    """A lab-staff record made from caller values (only ``allowed`` ones) plus ``fixed`` fields, audited."""
    require_lab_staff(actor, action)
    refuse_unknown(values, allowed)
    return audited_create(model, actor=actor, reason=reason, **fixed, **values)
