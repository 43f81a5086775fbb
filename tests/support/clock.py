"""The test clock: CMLIMS_TEST_CLOCK=2026-12-31T23:58:00Z moves "now" for a whole test run.

The clock keeps running from the set instant (time-machine, tick=True), so timeouts and ordering
behave as usual. A worker subprocess is handed the parent's "now" and when it was read, so both
processes agree on "now". PostgreSQL's own now() is not moved.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import time_machine
from time_machine import escape_hatch

ENV = "CMLIMS_TEST_CLOCK"
HANDED_AT_ENV = "CMLIMS_TEST_CLOCK_AT"


def clock_from_env() -> datetime | None:
    """The instant CMLIMS_TEST_CLOCK names (an ISO 8601 time with its zone), or None if unset."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"{ENV}={value!r} needs a zone, e.g. 2026-12-31T23:58:00Z")
    return when


def clock_start() -> time_machine.travel | None:
    """Move this process's clock to CMLIMS_TEST_CLOCK (ticking on from there); None when it is unset.

    With CMLIMS_TEST_CLOCK_AT (the real time, in epoch seconds, at which a parent read its "now"),
    the real time since then is added: a child that takes a second to start is not a second behind.
    """
    when = clock_from_env()
    if when is None:
        return None
    handed_at = os.environ.get(HANDED_AT_ENV)
    if handed_at:
        when += timedelta(seconds=time.time() - float(handed_at))  # real time: the travel has not started yet
    travel = time_machine.travel(when, tick=True)
    travel.start()
    return travel


def clock_env_for_child() -> dict[str, str]:
    """Environment for a child process: this process's "now" and the real time it was read at, when a
    test clock is set."""
    if clock_from_env() is None:
        return {}
    return {ENV: datetime.now(UTC).isoformat(), HANDED_AT_ENV: repr(escape_hatch.time.time())}
