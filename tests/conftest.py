"""Shared fixtures. Real parts only: PostgreSQL/SQLite, Redis or the embedded broker, a real worker.

With CMLIMS_REQUIRE_SERVICES=1 (CI), a test that needs PostgreSQL or Redis fails when it is
missing instead of being skipped. With CMLIMS_TEST_CLOCK=<ISO time> the whole run (and the
workers it starts) runs on a clock set to that instant (`make test-clocks`).
"""

import os
import uuid

import pytest
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.db import connection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from batches.models import LotStatus
from cmlims import roles
from tests.support import builders
from tests.support.builders import PASSWORD
from tests.support.clock import clock_from_env, clock_start
from tests.support.worker import WorkerProcess, purge_broker

# Property tests check logic, not speed: on a loaded 2-core CI machine Hypothesis's "too slow" health
# check and its per-example deadline fire on timing alone (seen in a clock run), so both are off.
hypothesis_settings.register_profile("cmlims", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("cmlims")


def pytest_configure(config):
    travel = clock_start()
    if travel is not None:
        config.add_cleanup(travel.stop)
    if os.environ.get("CMLIMS_REQUIRE_SERVICES") == "1":
        url = os.environ.get("DATABASE_URL", "")
        if not url.startswith(("postgres://", "postgresql://")):
            raise pytest.UsageError("CMLIMS_REQUIRE_SERVICES=1 needs DATABASE_URL=postgres://…")
        if not os.environ.get("REDIS_URL", "").startswith("redis://"):
            raise pytest.UsageError("CMLIMS_REQUIRE_SERVICES=1 needs REDIS_URL=redis://…")


def pytest_report_header(config):
    when = clock_from_env()
    return f"test clock: set to {when.isoformat()} (CMLIMS_TEST_CLOCK), running" if when else None


def _need(kind: str) -> None:
    if settings.CMLIMS_REQUIRE_SERVICES:
        pytest.fail(f"{kind} is required (CMLIMS_REQUIRE_SERVICES=1) but not configured")
    pytest.skip(f"needs {kind}; set DATABASE_URL/REDIS_URL (CI does)")


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings, request):
    """Each test counts login failures, lockouts and throttles from zero: its own cache key prefix (in Redis
    too, where clearing the database would also empty the broker's queues)."""
    caches = {alias: {**config, "KEY_PREFIX": f"{config.get('KEY_PREFIX', '')}t{uuid.uuid4().hex[:12]}"}
              for alias, config in settings.CACHES.items()}
    settings.CACHES = caches
    AxesProxyHandler.get_implementation(force=True)  # axes' handler holds its cache object: take the new one


@pytest.fixture
def require_postgres(db):
    if connection.vendor != "postgresql":
        _need("PostgreSQL")


@pytest.fixture
def require_redis():
    if not os.environ.get("REDIS_URL"):
        _need("Redis")


@pytest.fixture
def make_user(db):
    """make_user("lab1", roles.LAB_STAFF) -> a user in that role (see ``builders.make_user``)."""
    return builders.make_user


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def auth_client(make_user, api_client):
    """auth_client(user) -> an APIClient authenticated with a real token obtained over the API."""

    def client_for(user, password: str = PASSWORD):
        from rest_framework.test import APIClient

        client = APIClient()
        response = client.post("/api/v1/auth/token/", {"username": user.username, "password": password}, format="json")
        assert response.status_code == 200, response.content
        client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
        client.user = user
        return client

    return client_for


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """One real worker process for the session (tests using it need django_db(transaction=True))."""
    with django_db_blocker.unblock():
        purge_broker()
        worker = WorkerProcess(name="session").start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_factory(django_db_setup):
    """Start extra workers inside a test (kill/restart scenarios); all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(name: str, **kwargs) -> WorkerProcess:
        worker = WorkerProcess(name=name, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


# --- the manufacturing and QC people and data every app's tests build on (tests/support/builders.py) ---


@pytest.fixture
def lab1(make_user):
    return make_user("lab1", roles.LAB_STAFF, is_staff=True)


@pytest.fixture
def lab2(make_user):
    return make_user("lab2", roles.LAB_STAFF, is_staff=True)


@pytest.fixture
def qc1(make_user):
    return make_user("qc1", roles.QC_OFFICER, is_staff=True)


@pytest.fixture
def qc2(make_user):
    return make_user("qc2", roles.QC_OFFICER)


@pytest.fixture
def robot(make_user):
    return make_user("robot", roles.INTEGRATION)


@pytest.fixture
def chain(lab1, lab2, qc1):
    return builders.make_chain(lab1=lab1, lab2=lab2, qc=qc1)


@pytest.fixture
def spec(chain, qc2):
    return builders.sign_spec(qc2, chain.product)


@pytest.fixture
def releasable(chain, spec, qc2):
    """A qc_complete lot meeting every release condition for qc1 (results by lab1, approved by qc2)."""
    lot = builders.lot_at(chain, LotStatus.PACKAGED)
    return builders.lot_qc_complete(lot, analyst=chain.lab1, approver=qc2, officer=chain.qc)
