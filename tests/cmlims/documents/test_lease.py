"""One execution of a document job at a time: the lease (cmlims.documents.lease).

The defect it closes: a job whose message came twice (Redis redelivery after its visibility timeout, a sweep
re-send of a job that looked stale, a duplicate publish) ran twice at once and printed its labels twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from cmlims import roles
from cmlims.documents import services
from cmlims.documents.lease import Executor, take_over_reason
from cmlims.documents.models import DocumentJob, JobStatus
from cmlims.models import AuditEntry
from cmlims.printing.models import DispatchStatus, PrintDispatch
from tests.support.broker import CLOSED_PORT_BROKER, broker_at
from tests.support.builders import make_printer
from tests.support.documents import split_labels
from tests.support.races import race

pytestmark = pytest.mark.req("DOC-JOB-LEASE")

NOW = timezone.now()


def dead_process() -> Executor:
    """An executor whose process on this host has exited (a pool process SIGKILLed)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # noqa: S603
    try:
        with open(f"/proc/{child.pid}/stat") as stat:
            start = stat.read().rsplit(")", 1)[1].split()[19]
    finally:
        child.kill()
        child.wait()
    return Executor(host=os.uname().nodename, pid=child.pid, start=start, task="t-1", attempt=0, token="dead")


def reason(holder: Executor, claimant: Executor, *, expires_in: timedelta = timedelta(minutes=2)) -> str | None:
    return take_over_reason(holder_owner=holder.owner, expires_at=NOW + expires_in, claimant=claimant, now=NOW)


def test_a_live_holder_keeps_the_job_and_a_dead_one_loses_it_at_once():
    me = Executor.current(task="t-1")
    other_thread = Executor.current(task="t-1")  # the same process, a second delivery of the same message
    assert Executor.parse(me.owner) == me
    assert reason(me, other_thread) is None
    assert reason(dead_process(), other_thread) == "owner gone"
    assert take_over_reason(holder_owner="", expires_at=None, claimant=me, now=NOW) == "free"
    assert reason(me, me) == "own"


def test_a_holder_on_another_host_keeps_the_job_until_its_lease_runs_out():
    elsewhere = Executor(host="worker-7.example", pid=1, start="1", task="t-1", token="x")
    claimant = Executor.current(task="t-1")
    assert reason(elsewhere, claimant) is None  # its pid means nothing here: only the lease decides
    assert reason(elsewhere, claimant, expires_in=timedelta(seconds=-1)) == "expired"


def test_a_retry_of_the_same_task_takes_over_from_its_earlier_try_but_a_reused_pid_is_not_the_owner():
    first_try = Executor.current(task="t-9", attempt=0)
    assert reason(first_try, Executor.current(task="t-9", attempt=1)) == "retry"
    assert reason(first_try, Executor.current(task="t-8", attempt=1)) is None  # another task's retry: not ours
    # The holder's pid alive but started at another time: a later process took the pid; the holder is gone.
    reused = Executor(host=first_try.host, pid=os.getpid(), start="1", task="t-9", token="old")
    assert reason(reused, Executor.current(task="t-7")) == "owner gone"


def zebra_job(make_user, zebra, *, count: int = 6) -> DocumentJob:
    lab = make_user("lab-lease", roles.LAB_STAFF, is_staff=True)
    printer = make_printer(lab, address=zebra.address)
    params = {"template": "vial", "format": "zpl", "count": count, "layout": "page"}
    with broker_at(CLOSED_PORT_BROKER):  # no worker of this session takes it: the test runs every execution
        return services.document_job_request(kind="label_test_print", params=params, actor=lab, printer=printer)


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_at_once_print_the_labels_once(require_postgres, make_user, zebra):
    job = zebra_job(make_user, zebra, count=40)
    outcomes = race(lambda: services.document_job_run(job_id=job.pk, keep_lease=True),
                    lambda: services.document_job_run(job_id=job.pk, keep_lease=True))
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    # The second either stood down while the first held the job, or came after it was done.
    assert sorted(outcomes) in (sorted([JobStatus.DONE, services.LEASED]), sorted([JobStatus.DONE, services.SKIPPED]))
    done = DocumentJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.DONE and done.attempts == 1, done.error
    assert len(split_labels(b"".join(zebra.printed).decode())) == 40  # printed once, not 80
    assert PrintDispatch.objects.get(job=done).attempts == 1
    completed = AuditEntry.objects.filter(object_type="documents.documentjob", object_id=str(job.pk),
                                          action__in=["generated", "printed"])
    assert completed.count() == 1


@pytest.mark.django_db
def test_an_execution_that_lost_its_lease_prints_nothing_and_the_new_holder_prints_once(make_user, zebra):
    """A stalls past its lease (a long pause: its heartbeat thread could not reach the database); B takes the
    job over and prints it; when A resumes it finds the job not its own and stands down before printing."""
    job = zebra_job(make_user, zebra)
    stalled = Executor.current(task="a")
    started = services._job_start(job.pk, stalled)
    assert isinstance(started, DocumentJob) and started.lease_owner == stalled.owner
    assert services.document_job_run(job_id=job.pk) == services.LEASED  # while A holds it, B stands down
    DocumentJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert services.document_job_run(job_id=job.pk, executor=Executor.current(task="b")) == JobStatus.DONE
    assert len(split_labels(b"".join(zebra.printed).decode())) == 6

    assert services._job_execute(started, stalled, None) == services.LEASED  # A resumes: nothing more
    assert len(split_labels(b"".join(zebra.printed).decode())) == 6
    done = DocumentJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.DONE and done.attempts == 2
    assert "task=b " in done.lease_owner
    assert PrintDispatch.objects.get(job=done).status == DispatchStatus.SENT


@pytest.mark.django_db
def test_a_retryable_failure_gives_the_lease_back_and_the_sweep_resends_a_dead_holders_job(make_user, zebra,
                                                                                        settings):
    job = zebra_job(make_user, zebra)
    dead = dead_process()
    DocumentJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=1, lease_owner=dead.owner, heartbeat_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=2), last_sent_at=timezone.now() - timedelta(minutes=1))
    with broker_at(CLOSED_PORT_BROKER):
        # Its lease has two minutes left, but its process is gone: the sweep re-sends it now (the broker is
        # down here, so it stays for the next sweep; the point is that it was picked).
        assert services.document_jobs_sweep() == []
    assert DocumentJob.objects.get(pk=job.pk).send_error  # it tried to send it
    assert services.document_job_run(job_id=job.pk) == JobStatus.DONE  # and an execution takes it over
    assert DocumentJob.objects.get(pk=job.pk).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_duplicate_message_to_a_real_worker_stands_down_while_the_first_prints(celery_worker_process, make_user,
                                                                               zebra):
    """The session worker (two pool processes) gets the same job twice at once: it prints once."""
    job = zebra_job(make_user, zebra, count=600)
    assert services.document_job_send(job_id=job.pk) and services.document_job_send(job_id=job.pk)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not DocumentJob.objects.get(pk=job.pk).finished:
        time.sleep(0.2)
    done = DocumentJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.DONE, done.error
    assert done.send_count == 2 and done.attempts == 1  # two deliveries, one execution
    assert len(split_labels(b"".join(zebra.printed).decode())) == 600
    assert PrintDispatch.objects.get(job=done).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_vial_labels_asked_for_over_the_api_print_once_when_the_worker_gets_the_job_twice(
        celery_worker_process, chain, packaged_lot, auth_client, zebra):
    """The shipping desk's path end to end: the API queues the labels job for the Zebra, the broker delivers its
    message twice (the sweep re-sent it while the first delivery was printing), and the API reports one print."""
    printer = make_printer(chain.lab1, address=zebra.address)
    client = auth_client(chain.lab1)
    wanted = list(packaged_lot.vials.order_by("sequence").values_list("serial", flat=True))
    response = client.post(f"/api/v1/lots/{packaged_lot.lot_number}/labels/",
                           {"template": "vial", "kind": "quarantine", "vials": wanted, "printer": printer.pk},
                           format="json")
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]
    assert services.document_job_send(job_id=job_id)  # the duplicate message
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and client.get(f"/api/v1/jobs/{job_id}/").json()["status"] not in (
            "done", "failed"):
        time.sleep(0.2)
    status = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert status["status"] == "done", status
    assert status["print"]["status"] == "sent" and status["print"]["labels_confirmed"] == len(wanted)
    assert len(split_labels(b"".join(zebra.printed).decode())) == len(wanted)  # once, not twice
    job = DocumentJob.objects.get(pk=job_id)
    assert job.send_count >= 2 and job.attempts == 1
