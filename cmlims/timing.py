"""Time comes from the server: when a client says a step happened, the time is checked, and a late entry
(more than ``CMLIMS_LATE_ENTRY_HOURS`` after the step) needs a reason and is marked in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from cmlims.audit import late_entry
from cmlims.exceptions import field_error

# Instrument clocks and the server drift; a step "completed" a few minutes ahead is tolerated, no more.
FUTURE_TOLERANCE = timedelta(minutes=5)


def late_entry_threshold() -> timedelta:
    return timedelta(hours=float(getattr(settings, "CMLIMS_LATE_ENTRY_HOURS", 24)))


def is_late(occurred_at: datetime, *, now: datetime | None = None) -> bool:
    return (now or timezone.now()) - occurred_at > late_entry_threshold()


def occurred_at_check(value: datetime | None, *, field: str, reason: str = "", previous: datetime | None = None,
                      previous_name: str = "") -> tuple[datetime, bool]:
    """(when the step happened, whether it is a late entry); ``None`` is the server's now. Refused with a 400
    naming ``field``: no time zone, in the future, before ``previous`` (the record's previous step); naming
    ``reason``: a late entry without one."""
    now = timezone.now()
    if value is None:
        return now, False
    if timezone.is_naive(value):
        raise field_error(field, "must include a time zone (times are stored in UTC)")
    if value > now + FUTURE_TOLERANCE:
        raise field_error(field, "cannot be in the future (a step is recorded after it happened)")
    if previous is not None and value < previous:
        raise field_error(field, f"must not be before {previous_name or 'the previous step'} "
                                 f"({previous.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    late = is_late(value, now=now)
    if late and not (reason or "").strip():
        hours = late_entry_threshold().total_seconds() / 3600
        raise field_error("reason", f"{field} is more than {hours:g} h ago: a late entry needs a reason")
    return value, late


@contextmanager
def step_entry(value: datetime | None, *, field: str, reason: str = "", previous: datetime | None = None,
               previous_name: str = "") -> Iterator[datetime]:
    """Check the step's time (``occurred_at_check``) and, for a late entry, mark every audit entry written
    inside as late (with the time the step happened). Yields the time."""
    when, late = occurred_at_check(value, field=field, reason=reason, previous=previous,
                                   previous_name=previous_name)
    with late_entry(when) if late else nullcontext():
        yield when
