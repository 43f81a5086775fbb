"""Helpers the manufacturing services share: role checks, locking, step times and field updates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from cmlims import roles
from cmlims.audit import audited_create, audited_update
from cmlims.exceptions import Conflict, InvalidInput, field_error

from ..locks import row_lock

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


def update_fields(obj: M, *, allowed: Iterable[str], values: dict[str, Any], actor, reason: str = "") -> M:
    """Change only ``allowed`` fields (others are refused by name) through the audit API."""
    refuse_unknown(values, allowed)
    return audited_update(obj, actor=actor, reason=reason, **values)


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
