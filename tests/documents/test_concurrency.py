"""Two executions of one job at once (a redelivered message while the first still runs): it counts once."""

import threading

import pytest
from django.db import connection

from batches.documents import lot_labels_request
from cmlims.documents.models import DocumentJob, JobStatus, LabelPrint
from cmlims.documents.services import document_job_run
from cmlims.models import AuditEntry


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("README-JOBS-ONCE", "RULE-7")
def test_two_executions_of_one_job_issue_each_label_once(require_postgres, chain, packaged_lot):
    job = lot_labels_request(lot_number=packaged_lot.lot_number, actor=chain.lab1, template="vial",
                             kind="quarantine", output_format="pdf")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def execute() -> None:
        try:
            barrier.wait(timeout=30)
            outcomes.append(document_job_run(job_id=job.pk))
        finally:
            connection.close()  # each thread has its own PostgreSQL connection

    threads = [threading.Thread(target=execute) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # A worker (if one runs in this session) may have taken the sent message too: still only one completion.
    assert outcomes.count(JobStatus.DONE) <= 1 and len(outcomes) == 2
    done = DocumentJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.DONE
    vials = packaged_lot.vials.count()
    assert LabelPrint.objects.filter(job=done).count() == vials
    assert LabelPrint.objects.values("item_key").distinct().count() == vials
    printed = AuditEntry.objects.filter(object_type="documents.documentjob", object_id=str(job.pk), action="printed")
    assert printed.count() == 1
