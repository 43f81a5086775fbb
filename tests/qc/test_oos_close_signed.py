"""Issue 13 item 4 (rule 2 extended): closing an OOS investigation is a Part 11 signature ("investigation
closed": user name, password, meaning) by a QC officer who entered, approved and retested none of the results
it concerns (409 ``own_results`` naming the result). The signature shows on the investigation (API, admin)
and in the batch record."""

import re

import pytest
from django.test import Client

from cmlims import roles
from cmlims.documents.models import DocumentJob, JobStatus
from cmlims.documents.services import document_job_run
from cmlims.esign.models import Meaning, Signature
from cmlims.exceptions import Conflict, InvalidInput
from cmlims.investigations.models import Investigation, Status
from cmlims.investigations.services import investigation_close
from cmlims.models import AuditEntry
from qc.services.results import result_correct, result_retest
from tests.support.builders import PASSWORD, approve, enter
from tests.support.documents import pdf_page_texts

pytestmark = pytest.mark.django_db

CLOSE = {"conclusion": "pipetting error confirmed (phase I); retest passes",
         "related_lots_checked": "lots tested the same day: unaffected"}


@pytest.fixture
def qc3(make_user):
    return make_user("qc3", roles.QC_OFFICER, is_staff=True, first_name="Quinn", last_name="Third")


@pytest.fixture
def oos(packaged, chain, qc2):
    """A failing pH result entered by lab1, approved by qc2, retested by qc1: its open OOS investigation."""
    failing = approve(enter(packaged, "pH (reconstituted)", "8.4", "pH", analyst=chain.lab1), qc2)
    result_retest(result=failing, actor=chain.qc, value="7.4", unit="pH", analyst=chain.qc,
                  tested_at=failing.tested_at, instrument="PH-2")
    return failing, Investigation.objects.get(object_id=str(failing.pk))


def close_url(inv) -> str:
    return f"/api/v1/investigations/{inv.pk}/close/"


@pytest.mark.req("RULE-2", "211-192")
def test_nobody_closes_an_oos_investigation_into_results_they_entered_approved_or_retested(oos, chain, qc2, qc3):
    failing, inv = oos
    for officer, did in ((qc2, "approved"), (chain.qc, "retested")):
        with pytest.raises(Conflict) as exc:
            investigation_close(investigation=inv, actor=officer, username=officer.username, password=PASSWORD,
                                **CLOSE)
        assert exc.value.code == "own_results"
        assert f"{did} result #" in exc.value.message and inv.number in exc.value.message
    # Refused before the credential check: no signing failure is counted against the officer.
    assert not AuditEntry.objects.filter(action="signature_failed").exists()
    closed = investigation_close(investigation=inv, actor=qc3, username="qc3", password=PASSWORD, **CLOSE)
    assert closed.status == Status.CLOSED and closed.closed_by == qc3
    assert closed.closing_signature.meaning == Meaning.INVESTIGATION_CLOSED


@pytest.mark.req("RULE-2")
def test_a_correction_counts_as_work_on_the_results_from_the_records_and_the_trail(packaged, chain, qc3):
    failing = enter(packaged, "pH (reconstituted)", "8.4", "pH", analyst=chain.lab1)
    inv = Investigation.objects.get(object_id=str(failing.pk))
    result_correct(result=failing, actor=qc3, value="8.3", unit="pH", reason="transcription: 8.3 on the printout")
    with pytest.raises(Conflict) as exc:
        investigation_close(investigation=inv, actor=qc3, username="qc3", password=PASSWORD, **CLOSE)
    assert exc.value.code == "own_results"


@pytest.mark.req("P11-11.50", "P11-11.70", "211-192")
def test_api_close_of_an_oos_is_signed_and_the_signature_shows(oos, chain, qc2, qc3, auth_client):
    failing, inv = oos
    client = auth_client(qc3)
    missing = client.post(close_url(inv), CLOSE, format="json")
    assert missing.status_code == 400 and {"username", "password"} <= set(missing.json()["fields"])
    wrong = client.post(close_url(inv), {**CLOSE, "username": "qc3", "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    meaning = client.post(close_url(inv), {**CLOSE, "username": "qc3", "password": PASSWORD,
                                           "meaning": "released"}, format="json")
    assert meaning.status_code == 400 and "meaning" in meaning.json()["fields"]
    assert Investigation.objects.get(pk=inv.pk).status == Status.OPEN

    own = auth_client(qc2).post(close_url(inv), {**CLOSE, "username": "qc2", "password": PASSWORD}, format="json")
    assert own.status_code == 409 and own.json()["code"] == "own_results"
    assert f"#{failing.pk}" in own.json()["message"]

    done = client.post(close_url(inv), {**CLOSE, "username": "qc3", "password": PASSWORD,
                                        "meaning": "investigation closed"}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert body["status"] == "closed" and body["closed_by"] == "qc3"
    sig = body["closing_signature"]
    assert (sig["printed_name"], sig["meaning"], sig["changed_after_signing"]) == (
        "Quinn Third", "investigation closed", False)
    assert sig["signed_at"] == body["closed_at"]
    signature = Signature.objects.get(pk=sig["id"])
    assert signature.content["conclusion"] == CLOSE["conclusion"] and signature.subject == Investigation.objects.get(
        pk=inv.pk)
    # Shown on the detail and in the list; a later change to the conclusion shows as changed after signing.
    assert client.get(f"/api/v1/investigations/{inv.pk}/").json()["closing_signature"]["id"] == sig["id"]
    from cmlims.audit import audited_update

    audited_update(Investigation.objects.get(pk=inv.pk), actor=qc3, reason="typo", conclusion="edited")
    after = client.get(f"/api/v1/investigations/{inv.pk}/").json()["closing_signature"]
    assert after["changed_after_signing"] is True and after["changed_fields"] == ["conclusion"]


@pytest.mark.req("RULE-2", "P11-11.50")
def test_admin_close_of_an_oos_needs_the_signature_and_refuses_own_results(oos, chain, qc3):
    failing, inv = oos
    url = f"/admin/investigations/investigation/{inv.pk}/change/"
    form = {"phase": "phase_1", "root_cause": "pipetting", "related_lots_checked": CLOSE["related_lots_checked"],
            "conclusion": CLOSE["conclusion"], "product_disposition": "", "close": "on", "change_reason": ""}

    def messages(response) -> str:
        return " ".join(str(m) for m in response.context["messages"])

    retester = Client()
    retester.force_login(chain.qc)  # qc1 retested the result
    response = retester.post(url, {**form, "username": "qc1", "password": PASSWORD}, follow=True)
    assert "retested result" in messages(response)
    assert Investigation.objects.get(pk=inv.pk).status == Status.OPEN

    client = Client()
    client.force_login(qc3)
    response = client.post(url, form, follow=True)
    assert "password" in messages(response) or "username" in messages(response)
    assert Investigation.objects.get(pk=inv.pk).status == Status.OPEN
    response = client.post(url, {**form, "username": "qc3", "password": PASSWORD})
    assert response.status_code == 302
    closed = Investigation.objects.get(pk=inv.pk)
    assert closed.status == Status.CLOSED and closed.closing_signature.signer == qc3
    page = client.get(url).content.decode()
    assert "Quinn Third" in page and "investigation closed" in page and "unchanged" in page


@pytest.mark.req("P11-11.50")
def test_batch_record_lists_the_oos_investigation_with_its_closing_signature(oos, packaged, qc3, auth_client):
    _, inv = oos
    investigation_close(investigation=inv, actor=qc3, username="qc3", password=PASSWORD, **CLOSE)
    job = auth_client(qc3).post(f"/api/v1/lots/{packaged.lot_number}/batch-record/").json()["job"]
    document_job_run(job_id=job)
    done = DocumentJob.objects.get(pk=job)
    assert done.status == JobStatus.DONE, done.error
    text = re.sub(r"\s+", " ", " ".join(pdf_page_texts(done.output.read())))
    assert inv.number in text and 'signed "investigation closed" by Quinn Third' in text


@pytest.mark.req("RULE-6")
def test_an_excursion_still_closes_unsigned_with_its_disposition(chain, qc3):
    from cmlims.investigations.services import investigation_open

    inv = investigation_open(subject=chain.lab1, kind="temperature_excursion", title="9 C for 3 h", actor=chain.lab1)
    with pytest.raises(InvalidInput) as exc:
        investigation_close(investigation=inv, actor=qc3, conclusion="logger fault")
    assert set(exc.value.extra["fields"]) == {"product_disposition"}
    closed = investigation_close(investigation=inv, actor=qc3, conclusion="logger fault", product_disposition="usable")
    assert closed.status == Status.CLOSED and closed.closing_signature is None
