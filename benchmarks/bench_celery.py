"""B7 (issue 14): 10,000 vial labels through Celery with a real worker, against the same rendering in-process.

Measured: quarantine PDF labels for every vial of 200 packaged lots of the dataset (50 vials each: 10,000
labels) requested through ``lot_labels_request`` — the service the API and the lot admin call — one document job
per lot (the fan-out: one task per 50 labels, no per-label round trip), run by a real Celery worker started here
(``-Q labels -c 2``, the broker is REDIS_URL), until every job is done: each job's output written once with its
LabelPrint rows and audit entry. Floor: the same 200 jobs' builder (``build_lot_labels``: the lot and vials read,
the labels rendered) called in this process one after the other, writing nothing.

What it writes: the label jobs, their files, LabelPrint rows (reprints after the first round, with a reason and
the replaced labels' LabelDisposition rows) and audit entries, all on the 200 oldest packaged clone lots of the
dataset, which no other benchmark reads (B6 uses lots with a specification, the demo's; B1/B2/B8/B10 read no
labels). B9 verifies the whole trail, so it counts the entries B7 appended.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import Case

LOTS = 200
REASON = "benchmark B7: labels through the worker"
ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 900.0


class Worker:
    """A real Celery worker on the configured database and broker, stopped at exit."""

    def __init__(self, concurrency: int = 2) -> None:
        self.hostname = f"bench-{os.getpid()}@localhost"
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 120.0) -> Worker:
        from config.celery import app

        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE",
                                                                      "config.settings.local"),
               "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "labels", "-c", str(self.concurrency),
             "-n", self.hostname, "--without-gossip", "--without-mingle", "-l", "warning"],
            cwd=ROOT, env=env, start_new_session=True)
        atexit.register(self.stop)
        # A run stopped by SIGTERM (timeout, Ctrl-C of make) still stops its worker: exit runs atexit.
        signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}")
            replies = app.control.ping(destination=[self.hostname], timeout=2.0) or []
            if any(self.hostname in reply for reply in replies):
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the worker did not answer ping within {wait} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _jobs_wait(job_ids: list[int]) -> None:
    from cmlims.documents.models import DocumentJob, JobStatus

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        open_jobs = DocumentJob.objects.filter(pk__in=job_ids).exclude(status__in=[JobStatus.DONE, JobStatus.FAILED])
        if not open_jobs.exists():
            failed = list(DocumentJob.objects.filter(pk__in=job_ids, status=JobStatus.FAILED)
                          .values_list("pk", "error")[:3])
            assert not failed, f"label jobs failed: {failed}"
            return
        time.sleep(0.05)
    raise RuntimeError(f"label jobs not done within {WAIT_S} s")


def celery_cases() -> list[Case]:
    from django.contrib.auth import get_user_model

    from batches.documents.labels import build_lot_labels, lot_labels_request
    from batches.models import CMLot
    from cmlims.audit import chain_head
    from cmlims.documents.models import DocumentJob
    from cmlims.documents.registry import BuildContext

    actor = get_user_model().objects.get(username="lab1")
    lots = list(CMLot.objects.filter(status="packaged", voided_at__isnull=True, expiry__isnull=False,
                                     vials__isnull=False).distinct().order_by("created_at")[:LOTS])
    Worker().start()
    last: list[list[int]] = [[]]

    def measured() -> None:
        jobs = [lot_labels_request(lot=lot, actor=actor, template="vial", kind="quarantine", output_format="pdf",
                                   reason=REASON) for lot in lots]
        last[0] = [job.pk for job in jobs]
        _jobs_wait(last[0])

    measured()  # the jobs' parameters (the vials each prints) for the floor, and a warm worker
    labels = sum(len(job.params["vials"]) for job in DocumentJob.objects.filter(pk__in=last[0]))
    contexts = [BuildContext(job_id=job.pk, kind=job.kind, params=job.params, requested_by=actor,
                             subject_type=job.subject_type, subject_id=job.subject_id, chain_head=chain_head(),
                             progress=lambda _percent: None)
                for job in DocumentJob.objects.filter(pk__in=last[0]).order_by("pk")]

    def floor() -> None:
        for ctx in contexts:
            build_lot_labels(ctx)

    return [Case("B7", f"{labels:,} vial labels (PDF) through Celery, {len(lots)} jobs, a real worker (-c 2)",
                 measured, floor, 1.2, items=labels, rounds=2,
                 note="floor: the same jobs' builder in this process, one after the other, writing nothing")]
