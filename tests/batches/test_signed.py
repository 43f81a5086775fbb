"""Signed status changes (qc's sign-off calls lot_set_status_signed) and the release shown in the lot list."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.models import CMLot, LotStatus
from batches.services import lots
from cmlims.audit import audited_update
from cmlims.esign.services import signature_sign
from cmlims.exceptions import Conflict, InvalidInput
from tests.support.builders import lot_at

pytestmark = pytest.mark.django_db
PASSWORD = "correct-horse-battery"


def _sign(lot, user, meaning, reason="sterility failure"):
    return signature_sign(subject=lot, signer=user, username=user.username, password=PASSWORD, meaning=meaning,
                          reason=reason, content={"lot_number": lot.lot_number}, field_list_version="test-1")


@pytest.mark.req("RULE-8", "A11-9")
def test_signed_rejection_and_reason_required_afterwards(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    signature = _sign(lot, chain.qc, "rejected")
    lot = lots.lot_set_status_signed(lot=lot, to=LotStatus.REJECTED, actor=chain.qc, reason="sterility failure",
                                     signature=signature)
    assert lot.status == LotStatus.REJECTED and lot.change_requires_reason()
    stored = CMLot.objects.get(pk=lot.pk)
    with pytest.raises(InvalidInput) as err:
        audited_update(stored, actor=chain.qc, filter_lot="changed")
    assert "reason" in err.value.extra["fields"]


def test_signed_change_checks_the_rule_table_and_the_signature(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    wrong_meaning = _sign(lot, chain.qc, "rejected")
    with pytest.raises(Conflict) as err:
        lots.lot_set_status_signed(lot=lot, to=LotStatus.RELEASED, actor=chain.qc, reason="", signature=wrong_meaning)
    codes = {c["code"] for c in err.value.extra["conditions"]}
    assert {"wrong_status", "signature_mismatch"} <= codes
    with pytest.raises(InvalidInput):
        lots.lot_set_status_signed(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc, reason="",
                                   signature=wrong_meaning)
    assert CMLot.objects.get(pk=lot.pk).status == LotStatus.PACKAGED


@pytest.mark.req("P11-11.50")
def test_release_signature_in_the_lot_list_with_constant_queries(chain, auth_client):
    client = auth_client(chain.qc)
    first = lot_at(chain, LotStatus.PACKAGED)
    _sign(first, chain.qc, "released", reason="")
    with CaptureQueriesContext(connection) as one:
        body = client.get("/api/v1/lots/").json()
    release = body["results"][0]["release"]
    assert release["signed_by"] == chain.qc.get_full_name() and release["meaning"] == "released"
    second = lot_at(chain, LotStatus.PACKAGED)
    _sign(second, chain.qc, "released", reason="")
    with CaptureQueriesContext(connection) as two:
        body = client.get("/api/v1/lots/").json()
    assert all(item["release"] for item in body["results"])
    assert len(two.captured_queries) == len(one.captured_queries)


def test_released_lots_past_expiry_expire_automatically(chain):
    import datetime as dt

    from django.db import transaction
    from django.utils import timezone

    from cmlims.models import AuditEntry

    lot = lot_at(chain, LotStatus.PACKAGED)
    with transaction.atomic():  # qc_complete needs qc's data; the rule table's from-state is what matters here
        audited_update(CMLot.objects.get(pk=lot.pk), actor=chain.qc, clean=False, status=LotStatus.RELEASED,
                       expiry=timezone.localdate() - dt.timedelta(days=1))
    fresh = lot_at(chain, LotStatus.PACKAGED)
    assert lots.lots_expire_due() == [lot.lot_number]
    assert CMLot.objects.get(pk=lot.pk).status == LotStatus.EXPIRED
    assert CMLot.objects.get(pk=fresh.pk).status == LotStatus.PACKAGED
    entry = AuditEntry.objects.filter(object_type="batches.cmlot", object_id=str(lot.pk)).last()
    assert entry.action == "transitioned" and entry.username == "system" and "shelf life" in entry.reason
    with pytest.raises(Conflict) as err:
        lots.lot_transition(lot=fresh, to=LotStatus.EXPIRED, actor=chain.qc)
    assert err.value.extra["conditions"][0]["code"] == "automatic"
