"""Query counts of the job endpoint and the admin lists (fixed, whatever the number of rows)."""

import pytest
from django.test import Client

from cmlims import roles
from cmlims.documents import services
from cmlims.documents.services import document_job_run
from tests.support.builders import PASSWORD
from tests.support.queries import admin_request_reads

pytestmark = pytest.mark.django_db


def make_jobs(user, n: int) -> list[int]:
    ids = []
    for _ in range(n):
        job = services.document_job_request(
            kind="label_test_print", params={"template": "vial", "format": "zpl", "count": 2}, actor=user
        )
        ids.append(job.pk)
    return ids


def test_job_status_query_count(make_user, auth_client, django_assert_num_queries):
    user = make_user("ship1", roles.SHIPPING_COORDINATOR)
    (job_id,) = make_jobs(user, 1)
    client = auth_client(user)
    # token + user with its roles, the job with its requester
    with django_assert_num_queries(2):
        assert client.get(f"/api/v1/jobs/{job_id}/").status_code == 200


@pytest.mark.parametrize("rows", [1, 3])
def test_admin_lists_query_counts(chain, packaged_lot, rows, django_assert_num_queries):
    from batches.documents import lot_labels_request

    user = chain.lab1
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    for n in range(rows):
        job = lot_labels_request(lot=packaged_lot, actor=user, template="vial", kind="quarantine",
                                 output_format="zpl", reason=f"reprint {n}" if n else "")
        document_job_run(job_id=job.pk)
    client = Client()
    client.login(username=user.username, password=PASSWORD)
    client.get("/admin/documents/documentjob/")  # warm the session and content types
    # The fixed reads: session (none when cached), user with its roles (the admin refuses integration
    # accounts), its permissions in one query; then the page's own: two counts (filtered, whole), the page,
    # the kinds of the filter (6 and 7 before sessions were cached and permissions read in one query).
    with django_assert_num_queries(admin_request_reads() + 4):
        assert client.get("/admin/documents/documentjob/").status_code == 200
    with django_assert_num_queries(admin_request_reads() + 5):
        assert client.get("/admin/documents/labelprint/").status_code == 200


@pytest.mark.parametrize("jobs", [1, 3])
def test_lot_label_reconciliation_query_count(chain, packaged_lot, auth_client, jobs, django_assert_num_queries):
    from batches.documents import lot_labels_request

    for n in range(jobs):
        job = lot_labels_request(lot=packaged_lot, actor=chain.lab1, template="vial",
                                 kind="quarantine", output_format="zpl", reason=f"reprint {n}" if n else "")
        document_job_run(job_id=job.pk)
    client = auth_client(chain.qc)
    # token + user, the lot, its vial serials, the summary per kind, the keys per kind
    with django_assert_num_queries(5):
        response = client.get(f"/api/v1/lots/{packaged_lot.lot_number}/labels/")
    assert response.json()["labels"][0]["labels_issued"] == 10 * jobs
