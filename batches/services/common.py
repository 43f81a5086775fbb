"""Helpers the manufacturing services share: role checks, locking, step times and field updates."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.db import models
from django.utils import timezone

from cmlims import roles
from cmlims.audit import audited_update
from cmlims.exceptions import Conflict, InvalidInput, field_error

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
