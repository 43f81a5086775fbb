"""Two executions of one job at once (a redelivered message while the first still runs): it counts once."""

import pytest

from batches.documents import lot_labels_request
from cmlims.documents.models import DocumentJob, JobStatus, LabelPrint
from cmlims.documents.services import LEASED, SKIPPED, document_job_run
from cmlims.models import AuditEntry
from tests.support.broker import CLOSED_PORT_BROKER, broker_at
from tests.support.races import race


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("README-JOBS-ONCE", "RULE-7")
def test_two_executions_of_one_job_issue_each_label_once(require_postgres, chain, packaged_lot):
    with broker_at(CLOSED_PORT_BROKER):  # not sent: no worker of this session takes it, the two racers do
        job = lot_labels_request(lot=packaged_lot, actor=chain.lab1, template="vial",
                                 kind="quarantine", output_format="pdf")
    outcomes = race(lambda: document_job_run(job_id=job.pk), lambda: document_job_run(job_id=job.pk))
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes  # neither execution raised
    # One ran it; the other stood down while it held the job's lease, or found it done.
    assert outcomes.count(JobStatus.DONE) == 1 and {*outcomes} - {JobStatus.DONE} <= {LEASED, SKIPPED}, outcomes
    done = DocumentJob.objects.get(pk=job.pk)
    assert done.status == JobStatus.DONE
    vials = packaged_lot.vials.count()
    assert LabelPrint.objects.filter(job=done).count() == vials
    assert LabelPrint.objects.values("item_key").distinct().count() == vials
    printed = AuditEntry.objects.filter(object_type="documents.documentjob", object_id=str(job.pk), action="printed")
    assert printed.count() == 1
