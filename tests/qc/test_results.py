"""Results: conversion, computed pass/fail, never overwritten, approval (four eyes), OOS investigations,
qc_complete, hold — through the services and the API."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from batches.models import LotStatus
from batches.services.lots import lot_transition
from cmlims import roles
from cmlims.esign.models import Meaning
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from cmlims.investigations.models import Kind, Status
from cmlims.models import AuditEntry
from qc import selectors
from qc.models import QCResult, ResultStatus
from qc.services.results import result_correct, result_retest
from tests.support.builders import PASSWORD, approve, enter, pass_all

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.mark.req("README-RESULT-EVALUATION")
def test_value_is_converted_to_the_spec_unit_and_judged(packaged, chain):
    result = enter(packaged, "VEGF", "0.711", "ng/mL", analyst=chain.lab1)
    assert result.value == D("711") and result.passed
    assert result.spec_item.unit == "pg/mL"
    low = enter(packaged, "Residual moisture", "35", "mg/g", analyst=chain.lab1)
    assert low.value == D("3.5") and not low.passed


@pytest.mark.req("README-RESULT-EVALUATION")
def test_incompatible_unit_refused_with_a_clear_error(packaged, chain):
    with pytest.raises(InvalidInput) as exc:
        enter(packaged, "Bacterial endotoxin", "3", "pg/mL", analyst=chain.lab1)
    assert "'pg/mL' cannot be converted to 'EU/mL'" in exc.value.extra["fields"]["unit"][0]
    assert not QCResult.objects.exists()


def test_qualitative_value_must_be_in_the_allowed_set(packaged, chain):
    with pytest.raises(InvalidInput) as exc:
        enter(packaged, "Sterility", "cloudy", analyst=chain.lab1)
    assert "allowed values" in exc.value.extra["fields"]["value"][0]
    assert enter(packaged, "Sterility", "No growth", analyst=chain.lab1).qualitative_value == "no growth"


def test_unknown_test_future_time_naive_time_and_wrong_analyst_refused(packaged, chain, make_user):
    with pytest.raises(InvalidInput) as exc:
        enter(packaged, "Potency", "1", "pg/mL", analyst=chain.lab1)
    assert "test" in exc.value.extra["fields"]
    with pytest.raises(InvalidInput) as exc:
        enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1, tested_at=timezone.now() + timedelta(hours=2))
    assert "future" in exc.value.extra["fields"]["tested_at"][0]
    shipper = make_user("ship1", roles.SHIPPING_COORDINATOR)
    with pytest.raises(InvalidInput) as exc:
        enter(packaged, "VEGF", "600", "pg/mL", analyst=shipper, actor=chain.lab1)
    assert "analyst" in exc.value.extra["fields"]
    with pytest.raises(PermissionDenied):
        enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1, actor=shipper)


@pytest.mark.req("RULE-5", "211-192")
def test_failing_result_opens_an_oos_investigation(packaged, chain):
    from cmlims.investigations.models import Investigation
    from tests.support.builders import lot_at

    sibling = lot_at(chain, LotStatus.POOLED)  # same donor: a related lot the investigation must check
    result = enter(packaged, "pH (reconstituted)", "8.4", "pH", analyst=chain.lab1)
    assert not result.passed
    inv = Investigation.objects.get()
    assert inv.kind == Kind.OOS and inv.status == Status.OPEN and inv.subject == result
    assert "8.4" in inv.title and packaged.lot_number in inv.title
    assert sibling.lot_number in inv.details and packaged.lot_number not in inv.details
    assert [i.pk for i in selectors.lot_investigations(packaged, open_only=True)] == [inv.pk]
    enter(packaged, "pH (reconstituted)", "7.5", "pH", analyst=chain.lab1)
    assert Investigation.objects.count() == 1  # a passing result opens nothing


@pytest.mark.req("ALCOA", "RULE-5")
def test_correction_supersedes_with_reason_and_keeps_the_original(packaged, chain):
    original = enter(packaged, "VEGF", "60", "pg/mL", analyst=chain.lab1)
    with pytest.raises(InvalidInput) as exc:
        result_correct(result=original, actor=chain.lab1, value="600", unit="pg/mL", reason="")
    assert "reason" in exc.value.extra["fields"]
    fixed = result_correct(result=original, actor=chain.lab1, value="600", unit="pg/mL",
                           reason="transcription error: a zero dropped")
    original.refresh_from_db()
    assert original.status == ResultStatus.SUPERSEDED and original.value_entered == "60"
    assert fixed.supersedes == original and fixed.correction_reason.startswith("transcription")
    assert selectors.counting_results(packaged)[fixed.spec_item_id] == fixed
    with pytest.raises(InvalidInput):
        result_correct(result=original, actor=chain.lab1, value="700", unit="pg/mL", reason="again")
    entry = AuditEntry.objects.filter(object_type="qc.qcresult", object_id=str(original.pk)).last()
    assert entry.changes["status"] == ["valid", "superseded"] and entry.reason.startswith("transcription")


@pytest.mark.req("RULE-5", "ALCOA")
def test_retest_links_to_the_original_which_stays_valid_and_latest_counts(packaged, chain):
    first = enter(packaged, "pH (reconstituted)", "8.4", "pH", analyst=chain.lab1,
                  tested_at=timezone.now() - timedelta(hours=5))
    retest = result_retest(result=first, actor=chain.lab1, value="7.6", unit="pH", analyst=chain.lab2,
                           tested_at=timezone.now() - timedelta(hours=1))
    first.refresh_from_db()
    assert first.status == ResultStatus.VALID and retest.retest_of == first
    assert selectors.counting_results(packaged)[first.spec_item_id] == retest
    assert {r.pk for r in selectors.lot_results(packaged)} == {first.pk, retest.pk}


@pytest.mark.req("RULE-2", "FEAT-QC-RESULTS")
def test_approval_is_a_signature_and_never_by_the_one_who_entered(packaged, chain, make_user, qc2):
    officer_lab = make_user("qc3", roles.QC_OFFICER)
    result = enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1, actor=officer_lab)
    with pytest.raises(Conflict) as exc:
        approve(result, officer_lab)
    assert exc.value.extra["conditions"][0]["code"] == "own_result"
    with pytest.raises(PermissionDenied):
        approve(result, chain.lab2)
    approved = approve(result, qc2)
    assert approved.approved_by == qc2 and approved.approval.meaning == Meaning.RESULT_APPROVED
    assert approved.approval.printed_name == "Qc2 Tester"
    with pytest.raises(Conflict) as exc:
        approve(result, qc2)
    assert exc.value.extra["conditions"][0]["code"] == "already_approved"


@pytest.mark.req("RULE-3", "P11-11.10f")
def test_qc_complete_needs_an_approved_result_for_every_mandatory_item(packaged, chain, qc2):
    results = pass_all(packaged, analyst=chain.lab1, approver=qc2, skip=("Sterility", "TGF-beta1"))
    unapproved = enter(packaged, "Sterility", "no growth", analyst=chain.lab1)
    with pytest.raises(Conflict) as exc:
        lot_transition(lot=packaged, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    assert {"code": "result_not_approved", "detail": "Sterility: the latest result is not approved"} in \
        exc.value.extra["conditions"]
    approve(unapproved, qc2)
    assert "TGF-beta1" not in results  # not mandatory: not needed
    lot = lot_transition(lot=packaged, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    assert lot.status == LotStatus.QC_COMPLETE


def test_qc_complete_over_the_api_is_for_a_qc_officer(packaged, chain, qc2, auth_client):
    pass_all(packaged, analyst=chain.lab1, approver=qc2)
    url = f"/api/v1/lots/{packaged.lot_number}/transitions/"
    for user in (chain.lab1, chain.lab2):
        assert auth_client(user).post(url, {"to": "qc_complete"}, format="json").status_code == 403
    response = auth_client(chain.qc).post(url, {"to": "qc_complete"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == LotStatus.QC_COMPLETE


def test_qc_complete_lists_every_missing_item(packaged, chain):
    with pytest.raises(Conflict) as exc:
        lot_transition(lot=packaged, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    missing = {c["detail"].split(":")[0] for c in exc.value.extra["conditions"] if c["code"] == "result_missing"}
    assert missing == {"pH (reconstituted)", "Residual moisture", "Bacterial endotoxin", "VEGF", "Sterility"}


@pytest.mark.req("README-SPEC-VERSIONS")
def test_lot_is_tested_against_the_version_in_force_when_pooled(chain, qc2, spec):
    from tests.support.builders import SMALL_PANEL, lot_at, sign_spec

    old_lot = lot_at(chain, LotStatus.PACKAGED)  # pooled a day ago under version 1
    newer = [dict(i, upper=D("7.8")) if i["test"] == "pH (reconstituted)" else i for i in SMALL_PANEL]
    v2 = sign_spec(qc2, chain.product, items=newer, effective_days_ago=0)
    spec.refresh_from_db()
    assert spec.status == "superseded" and v2.version == 2 and v2.status == "in_force"
    assert selectors.lot_specification(old_lot) == spec
    assert enter(old_lot, "pH (reconstituted)", "7.9", "pH", analyst=chain.lab1).passed  # v1: 7.0-8.0


@pytest.mark.req("README-HOLD")
def test_hold_and_unhold_need_a_reason_and_a_qc_officer(packaged, chain, auth_client):
    client = auth_client(chain.qc)
    url = f"/api/v1/lots/{packaged.lot_number}/hold/"
    assert client.post(url, {"reason": ""}, format="json").status_code == 400
    assert auth_client(chain.lab1).post(url, {"reason": "x"}, format="json").status_code == 403
    response = client.post(url, {"reason": "OOS pH under investigation"}, format="json")
    assert response.status_code == 200 and response.json()["on_hold"] is True
    assert client.post(url, {"reason": "again"}, format="json").status_code == 409
    with pytest.raises(Conflict) as exc:
        lot_transition(lot=packaged, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    assert "on_hold" in {c["code"] for c in exc.value.extra["conditions"]}
    entry = AuditEntry.objects.filter(object_type="batches.cmlot", object_id=str(packaged.pk)).last()
    assert entry.changes["on_hold"] == [False, True] and entry.reason == "OOS pH under investigation"
    unhold = f"/api/v1/lots/{packaged.lot_number}/unhold/"
    assert auth_client(chain.lab1).post(unhold, {"reason": "x"}, format="json").status_code == 403
    assert client.post(unhold, {"reason": ""}, format="json").status_code == 400
    response = client.post(unhold, {"reason": "investigation closed"}, format="json")
    assert response.status_code == 200 and response.json()["on_hold"] is False
    again = client.post(f"/api/v1/lots/{packaged.lot_number}/unhold/", {"reason": "x"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "not_on_hold"
    assert client.post("/api/v1/lots/NOPE/hold/", {"reason": "x"}, format="json").status_code == 404


@pytest.mark.req("FEAT-QC-RESULTS")
def test_api_create_result_with_attachment_and_approve(packaged, chain, qc2, auth_client, robot):
    raw = SimpleUploadedFile("elisa.csv", b"well,od\nA1,0.42\n", content_type="text/csv")
    response = auth_client(robot).post("/api/v1/qc/results/", {
        "lot_number": packaged.lot_number, "test": "VEGF", "value": "711", "unit": "ng/L", "analyst": "lab1",
        "tested_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        "instrument": "ELISA reader 2", "attachment": raw,
    }, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["value"] == "711" and body["unit"] == "pg/mL" and body["passed"] is True
    assert body["analyst"] == "lab1" and body["entered_by"] == "robot" and len(body["attachment_sha256"]) == 64
    client = auth_client(qc2)
    url = f"/api/v1/qc/results/{body['id']}/approve/"
    wrong = client.post(url, {"username": "qc2", "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    other = client.post(url, {"username": "qc2", "password": PASSWORD, "meaning": "released"}, format="json")
    assert other.status_code == 400 and "meaning" in other.json()["fields"]
    ok = client.post(url, {"username": "qc2", "password": PASSWORD, "meaning": "result approved"}, format="json")
    assert ok.status_code == 200, ok.content
    approval = ok.json()["approval"]
    assert approval["meaning"] == "result approved" and approval["changed_after_signing"] is False
    assert approval["printed_name"] == "Qc2 Tester" and approval["signed_at"]


def test_api_refuses_bad_input_with_field_errors(packaged, chain, auth_client):
    client = auth_client(chain.lab1)
    base = {"lot_number": packaged.lot_number, "test": "Bacterial endotoxin", "value": "3",
            "tested_at": (timezone.now() - timedelta(hours=1)).isoformat()}
    response = client.post("/api/v1/qc/results/", dict(base, unit="pg/mL"), format="json")
    assert response.status_code == 400 and "incompatible" in response.json()["fields"]["unit"][0]
    response = client.post("/api/v1/qc/results/", dict(base, unit="EU/mL", tested_at="yesterday"), format="json")
    assert response.status_code == 400 and "tested_at" in response.json()["fields"]
    response = client.post("/api/v1/qc/results/", dict(base, unit="EU/mL", lot_number="CM99-9999"), format="json")
    assert response.status_code == 400 and "lot_number" in response.json()["fields"]
    response = client.post("/api/v1/qc/results/", dict(base, unit="EU/mL", value="abc"), format="json")
    assert response.status_code == 400 and "value" in response.json()["fields"]


def test_lot_results_endpoint_constant_queries(packaged, chain, qc2, auth_client, django_assert_num_queries):
    client = auth_client(chain.qc)
    url = f"/api/v1/lots/{packaged.lot_number}/results/"
    enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1)
    with django_assert_num_queries(5) as few:
        client.get(url)
    pass_all(packaged, analyst=chain.lab1, approver=qc2)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    body = response.json()
    assert body["specification"]["version"] == 1 and len(body["specification"]["items"]) == 6
    assert len(body["results"]) == 7 and sum(r["counts"] for r in body["results"]) == 6
    assert client.get("/api/v1/lots/NOPE/results/").status_code == 404


@pytest.mark.req("RULE-TIME-4", "RULE-5")
def test_which_result_counts_is_decided_by_links_not_by_tested_at(packaged, chain):
    failing = enter(packaged, "pH (reconstituted)", "8.4", "pH", analyst=chain.lab1,
                    tested_at=timezone.now() - timedelta(hours=5))
    # An unlinked passing result "tested" later does not outrank the failure.
    enter(packaged, "pH (reconstituted)", "7.5", "pH", analyst=chain.lab2, tested_at=timezone.now())
    assert selectors.counting_results(packaged)[failing.spec_item_id] == failing
    # A retest replaces its original through the link, even with an earlier tested_at.
    retest = result_retest(result=failing, actor=chain.lab1, value="7.6", unit="pH", analyst=chain.lab2,
                           tested_at=timezone.now() - timedelta(hours=6))
    counting = selectors.counting_results(packaged)[failing.spec_item_id]
    assert counting != failing and counting.passed
    assert retest.retest_of == failing
