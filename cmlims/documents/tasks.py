"""Celery tasks of document jobs: thin wrappers taking ids; the logic is in services."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from cmlims import periodic
from cmlims.documents import services
from cmlims.documents.lease import Executor


@shared_task(
    bind=True,
    name="documents.run_job",
    acks_late=True,
    reject_on_worker_lost=True,  # a killed worker's message goes back to the queue
    max_retries=services.MAX_ATTEMPTS,
    ignore_result=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def document_job_run_task(self, job_id: int) -> str:
    # The lease names this delivery (task id and try), so a retry takes over from its own earlier try at once
    # while a duplicate delivery of the same try stands down; the lease is renewed while the job runs.
    executor = Executor.current(task=self.request.id or "", attempt=self.request.retries or 0)
    try:
        return services.document_job_run(job_id=job_id, executor=executor, keep_lease=True)
    except services.TransientJobError as exc:
        if self.request.retries >= self.max_retries:
            services.document_job_fail(job_id=job_id, error=f"gave up after {self.request.retries + 1} tries: {exc}")
            return "failed"
        # Exponential backoff: 2, 4, 8, 16, 32 s.
        raise self.retry(exc=exc, countdown=2 ** (self.request.retries + 1)) from exc


@shared_task(name="documents.sweep", ignore_result=True)
def document_jobs_sweep_task() -> list[int]:
    return services.document_jobs_sweep()


periodic.register("documents-sweep", "documents.sweep", every=timedelta(minutes=1))
