"""Invalidate a QC result: a QC officer, signed "result invalidated", with a reason; never their own result.
An invalidated result counts no more; a failing result is set aside only explicitly, never by a later
tested_at. Through the service, the API and the admin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.models import LotStatus
from cmlims import roles
from cmlims.esign.models import Meaning, Signature
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from cmlims.models import AuditEntry
from qc import selectors
from qc.models import ResultStatus
from qc.services.results import result_invalidate
from tests.support.builders import PASSWORD, approve, enter, lot_qc_complete, lot_release, pass_all

pytestmark = pytest.mark.django_db


def invalidate(result, officer, reason="pipette calibration overdue: assignable cause (INV-1)", **extra):
    return result_invalidate(result=result, actor=officer, username=officer.username, password=PASSWORD,
                             reason=reason, **extra)


@pytest.mark.req("INTEG-RESULT-INVALIDATE", "RULE-TIME-4", "P11-11.50")
def test_invalidated_failing_result_no_longer_counts_and_a_later_tested_at_never_sets_it_aside(packaged, chain,
                                                                                               qc2):
    failing = enter(packaged, "pH (reconstituted)", "8.4", "pH", analyst=chain.lab1,
                    tested_at=timezone.now() - timedelta(hours=1))
    # A passing result with a LATER tested_at and no link does not set the failure aside ...
    later = enter(packaged, "pH (reconstituted)", "7.4", "pH", analyst=chain.lab2,
                  tested_at=timezone.now() - timedelta(minutes=10))
    assert selectors.counting_results(packaged)[failing.spec_item_id] == failing
    # ... an invalidation does: the failure stays visible, marked, and the other result counts.
    invalidated = invalidate(failing, qc2)
    assert invalidated.status == ResultStatus.INVALIDATED and invalidated.invalidated_by == qc2
    assert invalidated.invalidation.meaning == Meaning.RESULT_INVALIDATED
    assert invalidated.invalidation.printed_name == "Qc2 Tester"
    assert invalidated.invalidation_reason.startswith("pipette calibration")
    assert selectors.counting_results(packaged)[failing.spec_item_id] == later
    assert failing.pk in {r.pk for r in selectors.lot_results(packaged)}
    entry = AuditEntry.objects.filter(object_type="qc.qcresult", object_id=str(failing.pk),
                                      action="changed").get()
    assert entry.changes["status"] == ["valid", "invalidated"] and entry.reason == invalidated.invalidation_reason


@pytest.mark.req("INTEG-RESULT-INVALIDATE", "RULE-3")
def test_an_invalidated_approved_result_blocks_release_until_a_new_result_counts(packaged, chain, qc2):
    results = pass_all(packaged, analyst=chain.lab1, approver=qc2)
    invalidate(results["Sterility"], chain.qc)
    conditions = selectors.results_conditions(packaged, need_pass=True)
    assert [c["code"] for c in conditions] == ["result_missing"]
    assert "Sterility" in conditions[0]["detail"]


@pytest.mark.req("INTEG-RESULT-INVALIDATE", "RULE-2")
def test_invalidation_refusals_own_result_not_qc_no_reason_twice_closed_lot(packaged, chain, make_user, qc2):
    qc3 = make_user("qc3", roles.QC_OFFICER)
    own = enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1, actor=qc3)
    with pytest.raises(Conflict) as exc:
        invalidate(own, qc3)
    assert exc.value.code == "invalidation_refused"
    assert [c["code"] for c in exc.value.extra["conditions"]] == ["own_result"]
    performed = enter(packaged, "VEGF", "610", "pg/mL", analyst=qc3, actor=chain.lab1)
    with pytest.raises(Conflict) as exc:
        invalidate(performed, qc3)
    assert [c["code"] for c in exc.value.extra["conditions"]] == ["own_result"]
    with pytest.raises(PermissionDenied):
        invalidate(own, chain.lab2)
    with pytest.raises(InvalidInput) as exc:
        invalidate(own, qc2, reason="  ")
    assert "reason" in exc.value.extra["fields"]
    invalidate(own, qc2)
    with pytest.raises(Conflict) as exc:
        invalidate(own, chain.qc)
    assert [c["code"] for c in exc.value.extra["conditions"]] == ["already_invalidated"]
    assert Signature.objects.filter(meaning=Meaning.RESULT_INVALIDATED).count() == 1


@pytest.mark.req("INTEG-RESULT-INVALIDATE", "P11-11.200a", "FEAT-QC-RESULTS")
def test_api_invalidate_result_signed_with_reason(packaged, chain, qc2, auth_client):
    result = enter(packaged, "Residual moisture", "35", "mg/g", analyst=chain.lab1)
    url = f"/api/v1/qc/results/{result.pk}/invalidate/"
    assert auth_client(chain.lab2).post(url, {"username": "lab2", "password": PASSWORD, "reason": "x"},
                                        format="json").status_code == 403
    client = auth_client(qc2)
    missing = client.post(url, {"username": "qc2", "password": PASSWORD}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["fields"]
    wrong = client.post(url, {"username": "qc2", "password": "nope", "reason": "x"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    other = client.post(url, {"username": "qc2", "password": PASSWORD, "reason": "x", "meaning": "result approved"},
                        format="json")
    assert other.status_code == 400 and "meaning" in other.json()["fields"]
    ok = client.post(url, {"username": "qc2", "password": PASSWORD, "meaning": "result invalidated",
                           "reason": "sample vial cracked before testing"}, format="json")
    assert ok.status_code == 200, ok.content
    body = ok.json()
    assert body["status"] == "invalidated"
    assert body["invalidation"]["meaning"] == "result invalidated"
    assert body["invalidation"]["printed_name"] == "Qc2 Tester"
    assert body["invalidation"]["reason"] == "sample vial cracked before testing"
    again = client.post(url, {"username": "qc2", "password": PASSWORD, "reason": "again"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalidation_refused"
    assert again.json()["conditions"][0]["code"] == "already_invalidated"
    listed = auth_client(chain.lab1).get(f"/api/v1/lots/{packaged.lot_number}/results/").json()["results"]
    assert [(r["status"], r["counts"]) for r in listed if r["id"] == result.pk] == [("invalidated", False)]


@pytest.mark.req("INTEG-RESULT-INVALIDATE")
def test_api_invalidate_refused_after_release(packaged, chain, make_user, qc2, auth_client):
    qc3 = make_user("qc3", roles.QC_OFFICER)
    lot = lot_release(lot_qc_complete(packaged, analyst=chain.lab1, approver=qc2, officer=chain.qc), officer=qc3)
    assert lot.status == LotStatus.RELEASED
    result = lot.qc_results.order_by("pk").first()
    response = auth_client(chain.qc).post(f"/api/v1/qc/results/{result.pk}/invalidate/",
                                     {"username": "qc1", "password": PASSWORD, "reason": "late doubt"}, format="json")
    assert response.status_code == 409
    assert "lot_closed" in [c["code"] for c in response.json()["conditions"]]


@pytest.mark.req("INTEG-RESULT-INVALIDATE")
def test_admin_invalidate_page_signs_and_shows_on_the_signoff_page(packaged, chain, qc2, client):
    result = approve(enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1), qc2)
    client.force_login(chain.qc)
    url = f"/admin/qc/qcresult/{result.pk}/invalidate/"
    page = client.get(url)
    assert page.status_code == 200 and "result invalidated" in page.content.decode()
    refused = client.post(url, {"username": "qc1", "password": "wrong", "reason": "x"})
    assert refused.status_code == 200 and "wrong password" in refused.content.decode()
    done = client.post(url, {"username": "qc1", "password": PASSWORD, "reason": "reader lamp failed"})
    assert done.status_code == 302
    result.refresh_from_db()
    assert result.status == ResultStatus.INVALIDATED and result.invalidated_by == chain.qc
    signoff = client.get(f"/admin/qc/qcresult/signoff/{packaged.lot_number}/").content.decode()
    assert "invalidated" in signoff and "reader lamp failed" in signoff
    client.force_login(chain.lab1)
    assert client.get(url).status_code == 403
