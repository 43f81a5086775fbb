"""Rule 10: two officers release the same lot at the same moment — exactly one signature, the other 409.
Two real PostgreSQL connections (one per thread)."""

import pytest

from batches.models import CMLot, LotStatus
from cmlims.esign.models import Meaning, Signature
from cmlims.exceptions import Conflict
from qc.selectors import lot_review_latest_sequence
from qc.services.signoff import lot_sign_off
from tests.support.builders import PASSWORD
from tests.support.races import race


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("RULE-10")
def test_two_officers_release_at_once(require_postgres, releasable, chain, qc2):
    through = lot_review_latest_sequence(releasable)

    def release(officer):
        return lambda: lot_sign_off(
            lot=releasable, to=LotStatus.RELEASED, actor=officer, username=officer.username,
            password=PASSWORD, reason="release", audit_reviewed_through=through,
        )

    outcomes = dict(zip(("qc", "qc2"), race(release(chain.qc), release(qc2)), strict=True))
    signatures = [o for o in outcomes.values() if isinstance(o, Signature)]
    refusals = [o for o in outcomes.values() if isinstance(o, Conflict)]
    assert len(signatures) == 1 and len(refusals) == 1, outcomes
    assert {c["code"] for c in refusals[0].extra["conditions"]} >= {"wrong_status"}
    assert Signature.objects.filter(meaning=Meaning.RELEASED, object_id=str(releasable.pk)).count() == 1
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RELEASED
