"""Document jobs against a real worker: done once, broker down at request time, worker killed mid-job."""

import hashlib
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings

from cmlims import roles
from cmlims.documents import services
from cmlims.documents.models import DocumentJob, JobStatus
from cmlims.models import AuditEntry
from tests.support.broker import CLOSED_PORT_BROKER, broker_at
from tests.support.documents import read_pdf_symbols

pytestmark = pytest.mark.django_db(transaction=True)

def wait_for(job_id: int, predicate, timeout: float = 90.0) -> DocumentJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = DocumentJob.objects.get(pk=job_id)
        if predicate(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stuck: {DocumentJob.objects.filter(pk=job_id).values().first()}")


def finished(job: DocumentJob) -> bool:
    return job.status in (JobStatus.DONE, JobStatus.FAILED)


def request_test_labels(user, count: int = 4, output_format: str = "pdf") -> DocumentJob:
    params = {"template": "vial", "format": output_format, "count": count, "layout": "page"}
    return services.document_job_request(kind="label_test_print", params=params, actor=user)


@pytest.mark.req("README-JOBS-ONCE", "P11-11.10bc")
def test_job_runs_once_and_the_api_serves_status_and_download(celery_worker_process, make_user, auth_client):
    user = make_user("ship1", roles.SHIPPING_COORDINATOR)
    job = request_test_labels(user, count=4)
    done = wait_for(job.pk, finished)
    assert done.status == JobStatus.DONE, done.error
    assert (done.progress, done.attempts, done.send_count) == (100, 1, 1)
    content = done.output.read()
    assert hashlib.sha256(content).hexdigest() == done.sha256
    assert len(read_pdf_symbols(content)) == 4
    assert done.chain_sequence is not None and len(done.chain_hash) == 64

    client = auth_client(user)
    body = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["status"] == "done" and body["progress"] == 100
    assert body["download"] == f"/api/v1/jobs/{job.pk}/download/"
    download = client.get(body["download"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == content
    assert download["X-Content-SHA256"] == done.sha256

    # Running it again (a redelivered message) changes nothing.
    assert services.document_job_run(job_id=job.pk) == "skipped"
    assert DocumentJob.objects.get(pk=job.pk).attempts == 1
    generated = AuditEntry.objects.filter(
        object_type="documents.documentjob", object_id=str(job.pk), action="generated"
    )
    assert generated.count() == 1


def test_job_status_and_download_need_the_requesting_permission(make_user, auth_client):
    owner = make_user("ship2", roles.SHIPPING_COORDINATOR)
    with broker_at(CLOSED_PORT_BROKER):  # stays queued whatever workers run in this session
        job = request_test_labels(owner)
    qc = auth_client(make_user("qc2", roles.QC_OFFICER))
    assert qc.get(f"/api/v1/jobs/{job.pk}/").status_code == 403
    assert qc.get(f"/api/v1/jobs/{job.pk}/download/").status_code == 403
    assert auth_client(owner).get(f"/api/v1/jobs/{job.pk}/download/").status_code == 409  # not done yet
    missing = qc.get("/api/v1/jobs/999999/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_request_without_the_role_is_refused_and_creates_nothing(make_user):
    from cmlims.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        request_test_labels(make_user("qc3", roles.QC_OFFICER))
    assert not DocumentJob.objects.exists()


@pytest.mark.req("README-JOBS-ONCE")
def test_broker_down_at_request_time_then_the_sweep_sends_it(celery_worker_process, make_user, settings):
    user = make_user("ship3", roles.SHIPPING_COORDINATOR)
    with broker_at(CLOSED_PORT_BROKER):
        job = request_test_labels(user, count=2)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.send_count == 0 and job.last_sent_at is None
    assert job.send_error  # the broker error is kept for the admin
    time.sleep(1.0)
    assert DocumentJob.objects.get(pk=job.pk).status == JobStatus.QUEUED  # nobody else picked it up

    settings.CMLIMS_DOCUMENT_SEND_GRACE = timedelta(0)
    with broker_at(CLOSED_PORT_BROKER):
        assert services.document_jobs_sweep() == []  # still down: stays queued, no error raised
    assert services.document_jobs_sweep() == [job.pk]
    done = wait_for(job.pk, finished)
    assert done.status == JobStatus.DONE and done.attempts == 1 and done.send_count == 1
    assert services.document_jobs_sweep() == []  # nothing left to send


def test_api_answers_202_while_the_broker_is_down(celery_worker_process, make_user, auth_client, settings):
    """The same through HTTP: the request commits and answers; the sweep delivers later."""
    client = auth_client(make_user("ship4", roles.SHIPPING_COORDINATOR))
    from cmlims.documents.api.views import job_accepted

    with broker_at(CLOSED_PORT_BROKER):
        job = request_test_labels(client.user, count=1)
        response = job_accepted(job)
    assert response.status_code == 202 and response.data == {"job": job.pk, "url": f"/api/v1/jobs/{job.pk}/"}
    assert client.get(f"/api/v1/jobs/{job.pk}/").json()["status"] == "queued"
    settings.CMLIMS_DOCUMENT_SEND_GRACE = timedelta(0)
    services.document_jobs_sweep()
    assert wait_for(job.pk, finished).status == JobStatus.DONE


@pytest.mark.req("README-JOBS-ONCE")
def test_worker_killed_mid_job_completes_exactly_once(celery_worker_process, make_user, settings):
    user = make_user("ship5", roles.SHIPPING_COORDINATOR)
    celery_worker_process.kill()
    victim = None
    try:
        from tests.support.worker import WorkerProcess

        victim = WorkerProcess(name="victim", queues="labels", concurrency=1).start()
        job = request_test_labels(user, count=3000)
        wait_for(job.pk, lambda j: j.status == JobStatus.RUNNING and j.progress >= 3)
        victim.kill()
        killed = DocumentJob.objects.get(pk=job.pk)
        assert killed.status == JobStatus.RUNNING and killed.progress < 100
    finally:
        if victim:
            victim.stop()
        celery_worker_process.start()

    # The dead execution's heartbeat stops; after the lease the sweep re-sends the job.
    settings.CMLIMS_DOCUMENT_LEASE = timedelta(seconds=1)
    time.sleep(1.5)
    assert services.document_jobs_sweep() == [job.pk]
    done = wait_for(job.pk, finished, timeout=180)
    assert done.status == JobStatus.DONE, done.error
    assert done.attempts == 2
    assert hashlib.sha256(done.output.read()).hexdigest() == done.sha256
    generated = AuditEntry.objects.filter(
        object_type="documents.documentjob", object_id=str(job.pk), action="generated"
    )
    assert generated.count() == 1
    # A late redelivery of the original message (Redis visibility timeout) finds the job done.
    assert services.document_job_run(job_id=job.pk) == "skipped"
    assert django_settings.CELERY_TASK_ACKS_LATE and django_settings.CELERY_TASK_REJECT_ON_WORKER_LOST


def test_sweep_fails_a_job_that_keeps_losing_its_worker(make_user, settings):
    user = make_user("ship6", roles.SHIPPING_COORDINATOR)
    with broker_at(CLOSED_PORT_BROKER):
        job = request_test_labels(user)
    from django.utils import timezone

    DocumentJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=services.MAX_ATTEMPTS, heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert services.document_jobs_sweep() == []
    failed = DocumentJob.objects.get(pk=job.pk)
    assert failed.status == JobStatus.FAILED and "gave up" in failed.error


def test_the_sweep_is_a_registered_periodic_task():
    from cmlims.periodic import beat_schedule

    entry = beat_schedule()["documents-sweep"]
    assert entry["task"] == "documents.sweep" and entry["schedule"] == 60


@pytest.mark.req("DOC-JOB-LEASE")
def test_a_message_naming_no_job_is_dropped_with_a_warning_and_writes_nothing(caplog):
    """A message left in the broker by another database (or by one since restored from a backup) names a job
    that does not exist here: the worker drops it instead of failing the task and its retries."""
    missing = (DocumentJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    before = AuditEntry.objects.count()
    with caplog.at_level("WARNING", logger="cmlims.documents"):
        assert services.document_job_run(job_id=missing) == services.MISSING
    assert f"document job {missing} does not exist" in caplog.text
    assert AuditEntry.objects.count() == before and not DocumentJob.objects.filter(pk=missing).exists()
