"""Failed signatures are recorded against the record being signed: a lot's sign-off review by exception shows
every failed attempt on that lot (wrong password, another user's name, meaning not confirmed), while the
signing lockout still counts per user."""

import pytest
from django.urls import reverse

from cmlims.audit import Action
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD, enter

pytestmark = pytest.mark.django_db


def release(client, lot, **body):
    checklist = client.get(f"/api/v1/lots/{lot.lot_number}/signoff/").json()
    return client.post(f"/api/v1/lots/{lot.lot_number}/release/", {
        "username": client.user.username, "password": PASSWORD,
        "audit_reviewed_through": checklist["audit_review"]["confirm_through"], **body}, format="json")


@pytest.mark.req("INTEG-SIGN-FAILED-PER-RECORD", "P11-11.300", "A11-9")
def test_failed_lot_signatures_are_on_the_lot_and_in_its_review(releasable, chain, qc2, auth_client, client):
    api = auth_client(chain.qc)
    confirm = api.get(f"/api/v1/lots/{releasable.lot_number}/signoff/").json()["audit_review"]["confirm_through"]
    assert release(api, releasable, password="wrong").status_code == 400
    assert release(api, releasable, username="qc2").status_code == 400
    assert release(api, releasable, meaning="result approved").status_code == 400
    failures = AuditEntry.objects.filter(action=Action.SIGNATURE_FAILED, user=chain.qc).order_by("sequence")
    assert [(e.object_type, e.object_id) for e in failures] == [("batches.cmlot", str(releasable.pk))] * 3
    assert [e.changes["failure"] for e in failures] == [
        "wrong password", "user name is not the caller's", "meaning not confirmed"]
    assert all(e.changes["meaning"] == "released" for e in failures)
    # The failed attempts do not make the officer's review stale, and the lockout still counts them.
    from cmlims.esign.models import SigningFailure

    assert SigningFailure.objects.get(user=chain.qc).consecutive == 2
    # The sign-off page's review by exception names them for this lot.
    client.force_login(chain.qc)
    text = client.get(reverse("admin:qc_lot_signoff", args=[releasable.lot_number])).content.decode()
    exceptions = text[text.index("<h3>Exceptions"):text.index("<h3>Records created")]
    assert exceptions.count("failed signature") >= 3, exceptions
    assert "wrong password" in exceptions and "meaning not confirmed" in exceptions
    assert release(api, releasable, audit_reviewed_through=confirm).status_code == 200


@pytest.mark.req("INTEG-SIGN-FAILED-PER-RECORD")
def test_failed_signature_in_the_admin_is_on_the_lot_and_a_result_approval_failure_on_the_result(
        releasable, packaged, chain, qc2, client):
    client.force_login(chain.qc)
    url = reverse("admin:qc_lot_signoff", args=[releasable.lot_number])
    page = client.get(url)
    through = page.context["form"].initial["reviewed_through"]
    refused = client.post(url, {"action": "released", "username": "qc1", "password": "nope", "reason": "",
                                "reviewed_through": through, "confirm_review": "on"})
    assert refused.status_code == 200
    entry = AuditEntry.objects.filter(action=Action.SIGNATURE_FAILED).get()
    assert (entry.object_type, entry.object_id) == ("batches.cmlot", str(releasable.pk))
    result = enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1)
    approve = client.post(reverse("admin:qc_qcresult_approve", args=[result.pk]),
                          {"username": "qc1", "password": "nope", "reason": ""})
    assert approve.status_code == 200
    latest = AuditEntry.objects.filter(action=Action.SIGNATURE_FAILED).order_by("-sequence").first()
    assert (latest.object_type, latest.object_id) == ("qc.qcresult", str(result.pk))
