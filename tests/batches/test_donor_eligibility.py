"""Issue 13 item 4 (rule 2 extended; 21 CFR 1271.50): donor eligibility is determined and signed by a QC officer
("eligibility determined"), with a reason and the screening evidence; lab staff cannot set it (API and admin);
whoever recorded the donor's screening data does not determine it (409 ``own_donor_record``); a later change to
the screening data clears the determination; release (rule 3) reads the signed determination."""

import pytest
from django.test import Client

from batches.models import CellSource
from batches.services import sources
from cmlims import roles
from cmlims.audit import audited_update
from cmlims.esign.models import Meaning, Signature
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from cmlims.models import AuditEntry
from qc import selectors
from tests.support.builders import PASSWORD, donor_eligible, make_donor

pytestmark = pytest.mark.django_db

DETERMINE = {"eligibility_status": "eligible", "reason": "screening complete and negative",
             "evidence": "questionnaire DQ-17, infectious-disease panel IDP-2291 non-reactive"}


def url(source) -> str:
    return f"/api/v1/donors/{source.code}/eligibility/"


@pytest.fixture
def pending(lab1):
    return make_donor(lab1, code="DN-0100", eligible=False)


@pytest.mark.req("INTEG-DONOR-ELIGIBILITY", "RULE-2")
def test_lab_staff_cannot_set_eligibility_over_the_api(lab1, pending, auth_client):
    lab = auth_client(lab1)
    created = lab.post("/api/v1/donors/", {"code": "DN-0200", "tissue": "umbilical_cord",
                                           "collection_date": "2026-10-01", "eligibility_status": "eligible",
                                           "eligibility_determined_on": "2026-10-02"}, format="json")
    assert created.status_code == 400
    assert {"eligibility_status", "eligibility_determined_on"} <= set(created.json()["fields"])
    assert "QC officer" in created.json()["fields"]["eligibility_status"][0]
    patched = lab.patch(f"/api/v1/donors/{pending.code}/", {"eligibility_status": "eligible"}, format="json")
    assert patched.status_code == 400 and "eligibility_status" in patched.json()["fields"]
    assert lab.post(url(pending), {**DETERMINE, "username": "lab1", "password": PASSWORD},
                    format="json").status_code == 403
    assert CellSource.objects.get(pk=pending.pk).eligibility_status == "pending"


@pytest.mark.req("INTEG-DONOR-ELIGIBILITY", "P11-11.50", "P11-11.70")
def test_qc_determines_eligibility_signed_over_the_api(pending, qc1, auth_client):
    client = auth_client(qc1)
    missing = client.post(url(pending), {"eligibility_status": "maybe", "reason": "", "evidence": "",
                                         "username": "qc1", "password": PASSWORD}, format="json")
    assert missing.status_code == 400
    assert set(missing.json()["fields"]) == {"eligibility_status", "reason", "evidence"}
    wrong = client.post(url(pending), {**DETERMINE, "username": "qc1", "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    done = client.post(url(pending), {**DETERMINE, "username": "qc1", "password": PASSWORD,
                                      "meaning": "eligibility determined"}, format="json")
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["eligibility_status"], body["eligibility_determined_by"], body["eligibility_reason"]) == (
        "eligible", "qc1", DETERMINE["reason"])
    assert body["eligibility_evidence"] == DETERMINE["evidence"]
    assert body["eligibility_signature"]["meaning"] == "eligibility determined"
    assert body["eligibility_signature"]["printed_name"] == "Qc1 Tester"
    signature = Signature.objects.get(pk=body["eligibility_signature"]["id"])
    assert signature.content["eligibility_status"] == "eligible" and signature.content["code"] == "DN-0100"
    assert CellSource.objects.get(pk=pending.pk).is_eligible_with_consent


@pytest.mark.req("RULE-2", "INTEG-DONOR-ELIGIBILITY")
def test_whoever_recorded_the_screening_data_does_not_determine_it(make_user, qc1):
    both = make_user("labqc", roles.LAB_STAFF, roles.QC_OFFICER)
    source = make_donor(both, code="DN-0300", eligible=False)
    with pytest.raises(Conflict) as exc:
        sources.donor_eligibility_determine(source=source, actor=both, username="labqc", password=PASSWORD,
                                            **DETERMINE)
    assert exc.value.code == "own_donor_record" and "DN-0300" in exc.value.message
    assert not AuditEntry.objects.filter(action="signature_failed").exists()  # refused before the password
    determined = sources.donor_eligibility_determine(source=source, actor=qc1, username="qc1", password=PASSWORD,
                                                     **DETERMINE)
    assert determined.eligibility_signature.meaning == Meaning.ELIGIBILITY_DETERMINED


@pytest.mark.req("INTEG-DONOR-ELIGIBILITY")
def test_only_a_qc_officer_determines(pending, lab1):
    with pytest.raises(PermissionDenied):
        sources.donor_eligibility_determine(source=pending, actor=lab1, username="lab1", password=PASSWORD,
                                            **DETERMINE)
    with pytest.raises(InvalidInput) as exc:
        sources.cell_source_update(source=pending, actor=lab1, eligibility_status="eligible")
    assert "eligibility_status" in exc.value.extra["fields"]


@pytest.mark.req("INTEG-DONOR-ELIGIBILITY", "RULE-3")
def test_a_change_to_the_screening_data_clears_the_determination_and_release_waits_for_a_new_one(
        releasable, chain, qc1):
    donor = CellSource.objects.get(code="DN-0001")
    assert donor.eligibility_signature_id and selectors.donor_conditions(releasable) == []
    sources.cell_source_update(source=donor, actor=chain.lab1, eligibility_notes="HTLV retest pending",
                               reason="screening record corrected")
    donor.refresh_from_db()
    assert (donor.eligibility_status, donor.eligibility_signature_id, donor.eligibility_determined_by_id) == (
        "pending", None, None)
    cleared = AuditEntry.objects.filter(object_type="batches.cellsource", object_id=str(donor.pk)).last()
    assert cleared.reason.startswith("eligibility determination cleared: eligibility_notes changed")
    assert [c["code"] for c in selectors.donor_conditions(releasable)] == ["donor_not_eligible"]
    # A consent date change is not screening data: a new determination stays.
    donor_eligible(donor)
    sources.cell_source_update(source=CellSource.objects.get(pk=donor.pk), actor=chain.lab1,
                               consent_recorded_on=donor.consent_recorded_on.replace(day=1), reason="typo")
    assert CellSource.objects.get(pk=donor.pk).eligibility_signature_id is not None
    assert selectors.donor_conditions(releasable) == []


@pytest.mark.req("RULE-3", "INTEG-DONOR-ELIGIBILITY")
def test_release_reads_the_signed_determination_not_a_typed_status(releasable, chain):
    donor = CellSource.objects.get(code="DN-0001")
    # A status written around the services (no signature) does not make the donor eligible.
    audited_update(donor, actor=chain.lab1, reason="typed", eligibility_signature=None)
    assert CellSource.objects.get(pk=donor.pk).eligibility_status == "eligible"
    assert [c["code"] for c in selectors.donor_conditions(releasable)] == ["donor_not_eligible"]


@pytest.mark.req("INTEG-DONOR-ELIGIBILITY", "P11-11.50")
def test_admin_shows_eligibility_read_only_and_qc_determines_on_the_signing_page(pending, lab1, qc1):
    lab = Client()
    lab.force_login(lab1)
    change = f"/admin/batches/cellsource/{pending.pk}/change/"
    page = lab.get(change).content.decode()
    assert 'name="eligibility_status"' not in page and "not determined" in page
    form = {"code": pending.code, "tissue": pending.tissue, "collection_date": pending.collection_date.isoformat(),
            "consent_status": pending.consent_status, "consent_recorded_on": pending.consent_recorded_on.isoformat(),
            "eligibility_notes": pending.eligibility_notes, "eligibility_status": "eligible", "change_reason": ""}
    lab.post(change, form)
    assert CellSource.objects.get(pk=pending.pk).eligibility_status == "pending"  # the field is not on the form
    signing = f"/admin/batches/cellsource/{pending.pk}/eligibility/"
    refused = lab.post(signing, {**DETERMINE, "username": "lab1", "password": PASSWORD})
    assert refused.status_code == 403  # a QC officer's signing page: lab staff cannot open it
    assert CellSource.objects.get(pk=pending.pk).eligibility_status == "pending"

    qc = Client()
    qc.force_login(qc1)
    assert "eligibility determined" in qc.get(signing).content.decode()
    bad = qc.post(signing, {**DETERMINE, "evidence": "", "username": "qc1", "password": PASSWORD})
    assert bad.status_code == 200 and CellSource.objects.get(pk=pending.pk).eligibility_status == "pending"
    done = qc.post(signing, {**DETERMINE, "username": "qc1", "password": PASSWORD})
    assert done.status_code == 302 and done["Location"].endswith(change)
    source = CellSource.objects.get(pk=pending.pk)
    assert source.eligibility_status == "eligible" and source.eligibility_signature.signer == qc1
    assert "Qc1 Tester" in qc.get(change).content.decode()
