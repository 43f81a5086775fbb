"""Lifecycle holes in sign-off: a hold does not delay bad news (reject, recall), and an expired lot is never
released (README "QC and sign-off")."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from batches.models import CMLot, LotStatus
from cmlims.esign.models import Meaning, Signature
from qc.services.hold import lot_hold
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db


def sign(client, lot, action, *, reason):
    review = client.get(f"/api/v1/lots/{lot.lot_number}/signoff/")
    assert review.status_code == 200, review.content
    body = {"username": client.user.username, "password": PASSWORD, "reason": reason,
            "audit_reviewed_through": review.json()["audit_review"]["confirm_through"]}
    return client.post(f"/api/v1/lots/{lot.lot_number}/{action}/", body, format="json")


@pytest.mark.req("README-HOLD", "RULE-3", "FEAT-SIGNOFF")
def test_a_held_lot_can_be_rejected_but_not_released(releasable, chain, qc2, auth_client):
    lot_hold(lot=releasable, actor=qc2, reason="sterility query")
    officer = auth_client(chain.qc)
    refused = sign(officer, releasable, "release", reason="")
    assert refused.status_code == 409 and "on_hold" in {c["code"] for c in refused.json()["conditions"]}
    rejected = sign(officer, releasable, "reject", reason="sterility failure confirmed")
    assert rejected.status_code == 200, rejected.content
    lot = CMLot.objects.get(pk=releasable.pk)
    assert lot.status == LotStatus.REJECTED and lot.on_hold  # the hold's record stays as it was
    assert Signature.objects.filter(meaning=Meaning.REJECTED).count() == 1


@pytest.mark.req("README-HOLD", "FEAT-RECALL", "RULE-9")
def test_a_held_released_lot_can_be_recalled(releasable, chain, qc2, auth_client):
    assert sign(auth_client(qc2), releasable, "release", reason="all criteria met").status_code == 200
    lot_hold(lot=releasable, actor=chain.qc, reason="customer complaint, investigating")
    recalled = sign(auth_client(chain.qc), releasable, "recall", reason="complaint confirmed")
    assert recalled.status_code == 200, recalled.content
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RECALLED


@pytest.mark.req("RULE-3", "RULE-4", "FEAT-SIGNOFF")
def test_release_after_expiry_answers_409_expired(releasable, chain, auth_client):
    zone = ZoneInfo(settings.TIME_ZONE)
    expiry = releasable.expiry
    assert expiry is not None
    with time_machine.travel(dt.datetime.combine(expiry + dt.timedelta(days=1), dt.time(0, 30), tzinfo=zone)):
        assert timezone.localdate() > expiry
        officer = auth_client(chain.qc)  # logged in at that time: a token from today would have expired
        checklist = officer.get(f"/api/v1/lots/{releasable.lot_number}/signoff/").json()
        assert "expired" in {c["code"] for c in checklist["release_conditions"]}
        response = sign(officer, releasable, "release", reason="")
    assert response.status_code == 409, response.content
    expired = next(c for c in response.json()["conditions"] if c["code"] == "expired")
    assert expiry.isoformat() in expired["detail"]
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.QC_COMPLETE
    # On its expiry date itself the lot is still good.
    with time_machine.travel(dt.datetime.combine(expiry, dt.time(23, 30), tzinfo=zone)):
        assert sign(auth_client(chain.qc), releasable, "release", reason="").status_code == 200
