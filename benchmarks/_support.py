"""What the Django benchmarks share: setup, best-of timing and a throwaway database."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import django

    django.setup()


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by other load)."""
    fastest = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def in_throwaway_database(run: Callable[..., dict], *args: Any) -> dict:
    """Run ``run(*args)`` in a test database created and dropped here, never the configured one."""
    setup_django()
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        return run(*args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
