"""pytest plugin: ``@pytest.mark.req("P11-11.10e", "RULE-2")`` ties a test to the register.

Loaded from ``tests/conftest.py``. At collection every marker is checked (known ids, at most three,
``via`` one of api/browser): a bad marker stops the run naming the test. Each test's ids and how it
reaches the system go into the JUnit XML as test properties (``req``, ``via``), and the run's facts
(commit, date, Python, Django, database) as testsuite properties, for the traceability matrix.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path

import pytest

from cmlims.validation.facts import git_commit
from cmlims.validation.register import register_load

MAX_IDS = 3
VIA_CHOICES = ("api", "browser")
# A test that uses one of these fixtures (directly or through another fixture) goes through HTTP:
# the REST API with a real token, or the Django test client on the admin's pages.
API_FIXTURES = frozenset({"api_client", "auth_client"})
BROWSER_FIXTURES = frozenset({"client", "admin_client", "live_server"})
REGISTER_ENV = "CMLIMS_REQUIREMENTS"  # another register file (the plugin's own tests use a small one)


def item_via(item: pytest.Item, declared: str | None) -> str:
    """How the test reaches the system: "api", "browser" or "service" (direct calls)."""
    if declared:
        return declared
    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & API_FIXTURES:
        return "api"
    if fixtures & BROWSER_FIXTURES:
        return "browser"
    return "service"


def marker_problems(item: pytest.Item, known: set[str]) -> list[str]:
    problems = []
    for marker in item.iter_markers("req"):
        ids = marker.args
        where = f"{item.nodeid}: @pytest.mark.req{ids!r}"
        if not ids:
            problems.append(f"{where} names no requirement")
        if len(ids) > MAX_IDS:
            problems.append(f"{where} names {len(ids)} requirements; at most {MAX_IDS} per test")
        unknown = [req_id for req_id in ids if req_id not in known]
        if unknown:
            problems.append(f"{where}: unknown requirement id(s) {', '.join(map(str, unknown))}")
        extra = set(marker.kwargs) - {"via"}
        if extra:
            problems.append(f"{where}: unexpected argument(s) {', '.join(sorted(extra))}")
        if marker.kwargs.get("via") not in (None, *VIA_CHOICES):
            problems.append(f"{where}: via must be one of {', '.join(VIA_CHOICES)}")
    return problems


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    register_path = os.environ.get(REGISTER_ENV)
    known = set(register_load(**({"path": Path(register_path)} if register_path else {})))
    problems = []
    for item in items:
        markers = list(item.iter_markers("req"))
        if not markers:
            continue
        problems += marker_problems(item, known)
        ids = [req_id for marker in markers for req_id in marker.args]
        declared = next((marker.kwargs["via"] for marker in markers if "via" in marker.kwargs), None)
        item.user_properties.append(("req", " ".join(dict.fromkeys(ids))))
        item.user_properties.append(("via", item_via(item, declared)))
    if problems:
        raise pytest.UsageError("invalid requirement markers:\n  " + "\n  ".join(problems))


def _database_facts() -> tuple[str, str] | None:
    """The vendor and server version of the database the tests ran on, once a test opened it."""
    from django.db import connection

    if connection.connection is None:
        return None
    version = ".".join(str(part) for part in connection.get_database_version())
    return connection.vendor, version


_run_database: dict[str, str] = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        return (yield)
    finally:
        # Read while the test's database access is still open; the first test that used it is enough.
        if not _run_database:
            try:
                facts = _database_facts()
            except Exception:  # noqa: BLE001 - no database access in this test: try the next one
                facts = None
            if facts:
                _run_database.update(vendor=facts[0], version=facts[1])


@pytest.fixture(scope="session", autouse=True)
def _validation_run_properties(record_testsuite_property):
    """Testsuite properties of the JUnit report: what ran, where and when."""
    import django

    record_testsuite_property("commit", git_commit())
    record_testsuite_property("run_started", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    record_testsuite_property("python", platform.python_version())
    record_testsuite_property("django", django.get_version())
    yield
    record_testsuite_property("database_vendor", _run_database.get("vendor", "none opened"))
    record_testsuite_property("database_version", _run_database.get("version", ""))
