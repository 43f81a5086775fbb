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


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("RULE-10", "A11-15")
def test_two_officers_release_at_once_over_the_api(require_postgres, releasable, chain, qc2, auth_client):
    url = f"/api/v1/lots/{releasable.lot_number}/release/"
    clients = [auth_client(chain.qc), auth_client(qc2)]  # real tokens, obtained over the API
    # Both read the same checklist before either signs (the token logins are not in the lot's trail).
    through = [c.get(f"/api/v1/lots/{releasable.lot_number}/signoff/").json()["audit_review"]["confirm_through"]
               for c in clients]
    assert through[0] == through[1] == lot_review_latest_sequence(releasable)

    def release(client):
        body = {"username": client.user.username, "password": PASSWORD, "reason": "release",
                "audit_reviewed_through": through[0]}
        return lambda: client.post(url, body, format="json")

    responses = race(*(release(c) for c in clients))
    assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
    winner = next(r for r in responses if r.status_code == 200)
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["code"] == "signoff_refused", loser.content
    assert "wrong_status" in {c["code"] for c in loser.json()["conditions"]}
    released = Signature.objects.filter(meaning=Meaning.RELEASED, object_id=str(releasable.pk))
    assert released.count() == 1 and released.get().pk == winner.json()["signature"]["id"]
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RELEASED
