"""Races on real database connections: each call runs in its own thread, all released at one moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def race(*calls: Callable[[], Any], timeout: float = 120.0) -> list[Any]:
    """Run every call in its own thread (so its own database connection), released together by a barrier.

    Returns each call's result, or the exception it raised, in the order of ``calls``. Each thread
    closes its connections when done. A thread still running after ``timeout`` seconds fails the test
    (a deadlock or a lost wake-up, not a result).
    """
    start = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            start.wait(timeout=30)
            outcomes[index] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = [i for i, thread in enumerate(threads) if thread.is_alive()]
    assert not stuck, f"racers {stuck} still running after {timeout}s: {outcomes}"
    return outcomes
