"""Faults injected into real parts; each ends with nothing lost and the audit chain verifying clean.

- the broker (a Redis of the test's own) killed while requests come in, then started again;
- a worker's pool process SIGKILLed in the middle of a job (acks_late + reject_on_worker_lost);
- the database connection terminated (``pg_terminate_backend`` from a second connection) in the middle of a
  multi-row change;
- every backend of the test database terminated while API clients write (what an administrator's
  ``pg_terminate_backend`` or a connection pooler's restart does; a real PostgreSQL restart and crash, on a
  server of the test's own, is tests/reliability/test_database_restart.py);
- the document folder not writable (the job reports it by name and succeeds once the folder is back).
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, close_old_connections, connection, connections
from rest_framework.test import APIClient

from batches.models import Vial, VialStatus
from batches.shipping import services as shipping
from batches.shipping.models import Consignee, ShipmentVial
from cmlims import roles
from cmlims.audit.chain import AUDIT_LOCK_ID
from cmlims.documents import services as documents
from cmlims.documents.models import DocumentJob, JobStatus
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from config.celery import app
from tests.support.builders import PASSWORD, make_world, vial_serials
from tests.support.redis_server import RedisServer
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def audit_clean() -> None:
    report = audit_chain_verify()
    assert report.ok, report.summary()
    call_command("verify_audit")  # the command operators run: exits non-zero on any break


def wait_for(predicate, what: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def job_finished(job_id: int) -> DocumentJob | None:
    job = DocumentJob.objects.get(pk=job_id)
    return job if job.finished else None


def token_client(user) -> APIClient:
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def admin_connection() -> psycopg.Connection:
    """A second connection to the test database, outside Django: the one that injects the fault."""
    db = connection.settings_dict
    return psycopg.connect(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432, user=db.get("USER"),
                           password=db.get("PASSWORD") or None, dbname=db["NAME"], autocommit=True)


@pytest.fixture
def own_broker(tmp_path, require_postgres):
    """A Redis of this test's own; the test process's Celery app publishes there while the test runs."""
    redis = RedisServer(tmp_path / "redis").start()
    old = app.conf.broker_url
    app._after_fork()  # drop pooled connections to the shared broker
    app.conf.broker_url = redis.url
    yield redis
    app._after_fork()
    app.conf.broker_url = old
    redis.stop()


@pytest.fixture
def coordinator(make_user):
    return make_user("ship1", roles.SHIPPING_COORDINATOR)


@pytest.fixture
def world(coordinator):
    return make_world(coordinator=coordinator)


@pytest.mark.req("REL-FAULT-BROKER")
def test_broker_killed_during_requests_then_documents_go_out_when_it_returns(own_broker, world, coordinator,
                                                                              settings, tmp_path):
    lot = world.lot(vials=6)
    shipment = world.shipment()
    worker = WorkerProcess(name="fault-broker", queues="default,labels,reports", concurrency=1,
                           env={"REDIS_URL": own_broker.url}).start()
    try:
        client = token_client(coordinator)
        own_broker.stop()  # the broker crashes; the web keeps serving

        allocated = client.post(f"/api/v1/shipments/{shipment.pk}/allocate/",
                                {"vials": vial_serials(lot, 1, 2, 3)}, format="json")
        assert allocated.status_code == 200, allocated.content
        accepted = [client.post(f"/api/v1/shipments/{shipment.pk}/packing-list/"),
                    client.post(f"/api/v1/shipments/{shipment.pk}/labels/", {"format": "zpl"}, format="json")]
        assert [r.status_code for r in accepted] == [202, 202], [r.content for r in accepted]
        job_ids = [r.json()["job"] for r in accepted]
        for job in DocumentJob.objects.filter(pk__in=job_ids):
            assert job.status == JobStatus.QUEUED and job.send_count == 0 and job.send_error
        settings.CMLIMS_DOCUMENT_SEND_GRACE = timedelta(0)
        assert documents.document_jobs_sweep() == []  # still down: the sweep keeps them, raises nothing

        own_broker.start()  # the broker is back (empty: what it held in memory died with it)
        assert sorted(documents.document_jobs_sweep()) == sorted(job_ids)
        done = [wait_for(lambda i=i: job_finished(i), f"job {i}", timeout=120) for i in job_ids]
    finally:
        worker.stop()
    assert [j.status for j in done] == [JobStatus.DONE, JobStatus.DONE], [j.error for j in done]
    assert all(j.send_count == 1 and j.attempts == 1 for j in done)
    assert ShipmentVial.objects.filter(shipment=shipment, released_at__isnull=True).count() == 3
    audit_clean()


@pytest.mark.req("REL-FAULT-WORKER")
def test_worker_pool_process_sigkilled_mid_job_is_redelivered_and_completes_once(own_broker, coordinator):
    """Only the pool process that runs the task dies: the worker sees the loss and, because the task is
    acks_late with reject_on_worker_lost, puts the message back; a new pool process finishes the job."""
    worker = WorkerProcess(name="fault-worker", queues="labels", concurrency=1,
                           env={"REDIS_URL": own_broker.url}).start()
    try:
        params = {"template": "vial", "format": "pdf", "count": 2000, "layout": "page"}
        job = documents.document_job_request(kind="label_test_print", params=params, actor=coordinator)
        wait_for(lambda: DocumentJob.objects.filter(pk=job.pk, status=JobStatus.RUNNING, progress__gte=3).exists(),
                 "the job to be running")
        victims = worker.pool_pids()
        assert len(victims) == 1
        subprocess.run(["kill", "-KILL", str(victims[0])], check=True)  # noqa: S607
        killed = DocumentJob.objects.get(pk=job.pk)
        assert killed.status == JobStatus.RUNNING and killed.progress < 100
        done = wait_for(lambda: job_finished(job.pk), "the redelivered job", timeout=240)
        assert worker.pool_pids() and worker.pool_pids() != victims  # a new pool process did it
    finally:
        worker.stop()
    assert done.status == JobStatus.DONE, done.error
    assert done.attempts == 2 and done.send_count == 1  # redelivered by the broker, not re-sent by the sweep
    assert hashlib.sha256(done.output.read()).hexdigest() == done.sha256  # the one output kept is whole
    generated = AuditEntry.objects.filter(object_type="documents.documentjob", object_id=str(job.pk),
                                          action__in=["generated", "printed"])
    assert generated.count() == 1
    audit_clean()


@pytest.mark.req("REL-FAULT-DB-DROP")
def test_connection_terminated_in_the_middle_of_an_allocation_writes_nothing(world, coordinator):
    """The allocation inserts its shipment rows, then waits for the audit chain's lock (held by a second
    connection); its backend is terminated there. Nothing of it stays: no allocation row, vials available,
    no audit entry; the same allocation then succeeds."""
    lot = world.lot(vials=5)
    shipment = world.shipment()
    serials = vial_serials(lot, 1, 2, 3, 4)
    entries_before = AuditEntry.objects.count()
    outcome: dict = {}

    def allocate():
        try:
            shipping.shipment_allocate_scans(shipment=shipment, scans=serials, actor=coordinator)
            outcome["result"] = "allocated"
        except OperationalError as exc:
            outcome["result"] = f"connection lost: {exc}"
        finally:
            connections.close_all()

    with admin_connection() as injector:
        injector.execute("SELECT pg_advisory_lock(%s)", [AUDIT_LOCK_ID])
        thread = threading.Thread(target=allocate)
        thread.start()

        def victim_waiting():
            row = injector.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()
            return row[0] if row else None

        victim = wait_for(victim_waiting, "the allocation to wait on the audit lock")
        # Its rows are written, uncommitted: the fault hits in the middle of the multi-row change.
        assert injector.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND mode = 'RowExclusiveLock'",
                                [victim]).fetchone()[0] > 0
        injector.execute("SELECT pg_terminate_backend(%s)", [victim])
        thread.join(timeout=60)
        injector.execute("SELECT pg_advisory_unlock(%s)", [AUDIT_LOCK_ID])
    assert outcome["result"].startswith("connection lost"), outcome
    close_old_connections()
    assert not ShipmentVial.objects.filter(shipment=shipment).exists()
    assert set(Vial.objects.filter(lot=lot).values_list("status", flat=True)) == {VialStatus.AVAILABLE}
    assert AuditEntry.objects.count() == entries_before
    audit_clean()

    shipping.shipment_allocate_scans(shipment=shipment, scans=serials, actor=coordinator)
    assert ShipmentVial.objects.filter(shipment=shipment).count() == 4
    assert Vial.objects.filter(lot=lot, status=VialStatus.ALLOCATED).count() == 4
    audit_clean()


CONSIGNEE = {"address_line1": "Hafenstrasse 1", "city": "Hamburg", "country": "DE", "contact_name": "Dr. A. Berg"}


@pytest.mark.req("REL-FAULT-DB-DROP")
def test_every_backend_terminated_under_load_loses_no_acknowledged_write(require_postgres, make_user):
    """Four clients write consignees and read lots while every backend of the test database is terminated
    three times. A request in flight may be refused (503, never 500); none that was answered 201 is lost,
    none half-written, and once the connections are back every request succeeds."""
    users = [make_user(f"load{i}", roles.SHIPPING_COORDINATOR) for i in range(4)]
    clients = [token_client(user) for user in users]
    stop = threading.Event()
    acknowledged: list[str] = []
    failures: list[str] = []
    after_restart: list[int] = []
    answered: list[int] = []
    restarted = threading.Event()

    def run(index: int, client: APIClient) -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                name = f"C{index}-{n}"
                was_restarted = restarted.is_set()
                close_old_connections()  # what a real server does around each request (the test client skips it)
                try:
                    response = client.post("/api/v1/consignees/", {"name": name, **CONSIGNEE}, format="json")
                    read = client.get("/api/v1/lots/")
                except Exception as exc:  # noqa: BLE001 - a request in flight when its connection was cut
                    failures.append(f"{name}: {type(exc).__name__}")
                    if was_restarted:
                        after_restart.append(type(exc).__name__)
                    close_old_connections()
                    continue
                answered.extend([response.status_code, read.status_code])
                if response.status_code == 201:
                    acknowledged.append(name)
                if was_restarted:
                    after_restart.extend([response.status_code, read.status_code])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    terminated = 0
    with admin_connection() as injector:
        for _ in range(3):
            time.sleep(1.5)
            terminated += injector.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
        restarted.set()
        time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    connection.close()  # ours was terminated too

    assert terminated >= 3
    stored = set(Consignee.objects.values_list("name", flat=True))
    assert set(acknowledged) <= stored, f"lost: {set(acknowledged) - stored}"
    assert len(acknowledged) >= 4
    # Every stored consignee (also one committed just before its answer was cut) has its creation audited.
    audited = set(AuditEntry.objects.filter(object_type="shipping.consignee", action="created")
                  .values_list("object_id", flat=True))
    assert {str(pk) for pk in Consignee.objects.values_list("pk", flat=True)} <= audited
    assert after_restart and set(after_restart) <= {200, 201}, after_restart
    assert set(answered) <= {200, 201, 503}, answered  # a cut connection is "retry" (503), not a server error
    audit_clean()


@pytest.fixture
def unwritable_media(settings, tmp_path):
    """A document folder nobody may write (root too: the immutable attribute), made writable again on exit."""
    folder = tmp_path / "media"
    folder.mkdir()
    settings.MEDIA_ROOT = str(folder)
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)  # noqa: S607
    if made.returncode != 0:
        folder.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        pass
    else:
        probe.unlink()
        pytest.fail("could not make the document folder unwritable (needs chattr as root, or a non-root user)")

    def restore() -> None:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)  # noqa: S607
        folder.chmod(0o755)

    yield restore
    restore()


@pytest.mark.req("REL-FAULT-DOC-FOLDER")
def test_document_folder_not_writable_fails_the_job_by_name_and_a_retry_succeeds(unwritable_media, coordinator,
                                                                               settings):
    from cmlims.documents.tasks import document_job_run_task

    params = {"template": "vial", "format": "pdf", "count": 2, "layout": "page"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")  # nothing listens: the job stays queued
        app._after_fork()
        first = documents.document_job_request(kind="label_test_print", params=params, actor=coordinator)
        second = documents.document_job_request(kind="label_test_print", params=params, actor=coordinator)
    app._after_fork()

    # One execution: a retryable error naming the folder; nothing of the output is recorded.
    with pytest.raises(documents.TransientJobError, match="document folder .* is not writable"):
        documents.document_job_run(job_id=first.pk)
    waiting = DocumentJob.objects.get(pk=first.pk)
    assert waiting.status == JobStatus.RUNNING and "not writable" in waiting.error and not waiting.output
    assert not list(Path(settings.MEDIA_ROOT).iterdir())  # no file written

    # The task retries with backoff and, when the folder stays unwritable, fails the job with the reason.
    document_job_run_task.apply(args=[second.pk])
    failed = DocumentJob.objects.get(pk=second.pk)
    assert failed.status == JobStatus.FAILED
    assert "gave up after" in failed.error and "not writable" in failed.error
    audit_clean()

    unwritable_media()  # the operator fixes the folder; the retry (the task's next try) succeeds
    assert documents.document_job_run(job_id=first.pk) == JobStatus.DONE
    done = DocumentJob.objects.get(pk=first.pk)
    assert done.status == JobStatus.DONE and done.attempts == 2 and done.error == "" and done.output
    assert hashlib.sha256(done.output.read()).hexdigest() == done.sha256
    audit_clean()
