"""B5's lot (``benchmarks/dataset_coa.py``): a real released lot whose certificate has 30 results."""

import pytest

from batches.models import LotStatus
from benchmarks.dataset_coa import COA_GTIN, RESULTS, coa_lot
from cmlims.verification import audit_chain_verify
from config.demo import seed_all

pytestmark = pytest.mark.django_db


def test_the_b5_lot_is_released_through_the_services_with_30_results_and_built_once(django_assert_num_queries):
    from django.contrib.auth import get_user_model

    from cmlims.audit import chain_head
    from cmlims.documents.registry import BuildContext
    from qc.documents import COA, coa_report

    seed_all(log=lambda _msg: None)  # what the dataset starts from
    lot = coa_lot()
    assert lot.status == LotStatus.RELEASED and lot.product.gtin == COA_GTIN
    ctx = BuildContext(job_id=0, kind=COA, params={"lot_number": lot.lot_number},
                       requested_by=get_user_model().objects.get(username="qc1"), subject_type="batches.cmlot",
                       subject_id=str(lot.pk), chain_head=chain_head(), progress=lambda _percent: None)
    report, _lot = coa_report(ctx)
    rows, release = report.sections[1].table_rows, report.sections[2].table_rows
    assert len(rows) == RESULTS and all(row[4] == "pass" for row in rows)
    assert [(row[1], row[4]) for row in release] == [("released", "unchanged")]  # the v2 genealogy included
    assert audit_chain_verify().ok
    with django_assert_num_queries(1):
        assert coa_lot() == lot  # reused, not built again
