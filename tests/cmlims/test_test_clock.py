"""The test clock (tests/support/clock.py) behind `make test-clocks`: it moves "now", keeps it running,
and hands a child process (the real Celery worker) the parent's "now"."""

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from tests.support.clock import ENV, HANDED_AT_ENV, clock_env_for_child, clock_start
from tests.support.worker import ROOT

SET = datetime(2031, 12, 31, 23, 59, 30, tzinfo=UTC)
CHILD_NOW = ("from datetime import UTC, datetime; from tests.support.clock import clock_start; "
             "clock_start(); print(datetime.now(UTC).isoformat())")


def test_the_clock_is_set_and_keeps_running(monkeypatch):
    monkeypatch.setenv(ENV, SET.isoformat())
    travel = clock_start()
    try:
        first = timezone.now()
        time.sleep(0.05)
        assert SET <= first < timezone.now() < SET + timedelta(seconds=30)
        assert timezone.localdate().year == 2031
    finally:
        travel.stop()


def test_a_child_process_agrees_with_the_parent_on_now(monkeypatch):
    monkeypatch.setenv(ENV, SET.isoformat())
    travel = clock_start()
    try:
        env = {**os.environ, **clock_env_for_child()}
        started = datetime.now(UTC)
        child = subprocess.run([sys.executable, "-c", CHILD_NOW], cwd=ROOT, env=env, capture_output=True,  # noqa: S603
                               text=True, timeout=120, check=True)
        finished = datetime.now(UTC)
    finally:
        travel.stop()
    assert started <= datetime.fromisoformat(child.stdout.strip()) <= finished, (started, child.stdout, finished)


def test_without_the_variable_nothing_moves(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(HANDED_AT_ENV, raising=False)
    assert clock_start() is None and clock_env_for_child() == {}
