"""The QC admin: result list without per-row queries, the sign-off page (checklist, audit trail, signature),
the import page and signed specification approval — all through the services."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from batches.models import CMLot, LotStatus
from cmlims.esign.models import Meaning, Signature
from qc.models import QCResult, Specification, SpecStatus
from qc.selectors import lot_review_latest_sequence
from qc.services.specs import specification_create
from tests.support.builders import PASSWORD, SMALL_PANEL, enter, pass_all

pytestmark = pytest.mark.django_db


def staff(user):
    user.is_staff = True
    user.save()
    return user


def test_result_changelist_has_no_per_row_queries(client, packaged, chain, qc2, django_assert_max_num_queries):
    client.force_login(staff(chain.qc))
    url = reverse("admin:qc_qcresult_changelist")
    enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1)
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    pass_all(packaged, analyst=chain.lab1, approver=qc2)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url)
    assert response.status_code == 200 and QCResult.objects.count() == 7


@pytest.mark.req("FEAT-SIGNOFF", "A11-9", "P11-11.50")
def test_signoff_page_shows_checklist_and_audit_trail_and_signs(client, releasable, chain):
    client.force_login(staff(chain.qc))
    url = reverse("admin:qc_lot_signoff", args=[releasable.lot_number])
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    # The checklist speaks words, not codes.
    assert "audit_review_missing" not in text and "The audit trail review is not confirmed" in text
    assert "Audit trail since the last review" in text and "password" in text and "reason" in text
    through = lot_review_latest_sequence(releasable)
    wrong = client.post(url, {"action": "released", "username": "qc1", "password": "nope", "reason": "",
                              "reviewed_through": through, "confirm_review": "on"})
    wrong_text = wrong.content.decode()
    # The error is summarised at the top and the form posts back to its own anchor (the page opens there).
    assert 'id="error-summary"' in wrong_text and "wrong password" in wrong_text
    assert wrong_text.index("error-summary") < wrong_text.index("Signatures</h2>")
    assert 'action="#sign"' in wrong_text and 'href="#sign"' in wrong_text
    unconfirmed = client.post(url, {"action": "released", "username": "qc1", "password": PASSWORD, "reason": "",
                                    "reviewed_through": through})
    assert "audit trail review is not confirmed" in unconfirmed.content.decode()
    done = client.post(url, {"action": "released", "username": "qc1", "password": PASSWORD, "reason": "ok",
                             "reviewed_through": through, "confirm_review": "on"}, follow=True)
    assert done.redirect_chain == [(url, 302)]
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RELEASED
    released_page = done.content.decode()
    assert f"Lot {releasable.lot_number} released (signed by Qc1 Tester)." in released_page
    assert Signature.objects.filter(meaning=Meaning.RELEASED).count() == 1
    # A released lot can only be recalled: the release/reject choice is gone.
    assert 'value="released"' not in released_page and 'value="recalled"' in released_page


def test_import_page_lists_row_errors(client, packaged, chain):
    client.force_login(staff(chain.lab1))
    url = reverse("admin:qc_qcresult_import")
    data = ("lot_number,test,value,unit,analyst,tested_at,instrument\n"
            f"{packaged.lot_number},VEGF,abc,pg/mL,lab1,2026-01-01T00:00:00+00:00,X\n").encode()
    response = client.post(url, {"file": SimpleUploadedFile("r.csv", data, content_type="text/csv")})
    assert response.status_code == 200 and "is not a number" in response.content.decode()
    assert not QCResult.objects.exists()


@pytest.mark.req("README-SPEC-VERSIONS")
def test_specification_approval_page_signs_it_into_force(client, chain, qc2):
    spec = specification_create(product=chain.product, title="CM release", actor=chain.qc, items=SMALL_PANEL)
    client.force_login(staff(qc2))
    url = reverse("admin:qc_specification_approve", args=[spec.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"username": "qc2", "password": PASSWORD, "reason": "v1"})
    assert response.status_code == 302
    spec = Specification.objects.get(pk=spec.pk)
    assert spec.status == SpecStatus.IN_FORCE and spec.approval.meaning == Meaning.SPECIFICATION_APPROVED


def test_result_approval_page_shows_a_wrong_password_on_the_form_then_signs(client, packaged, chain, qc2):
    result = enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1)
    client.force_login(staff(qc2))
    url = reverse("admin:qc_qcresult_approve", args=[result.pk])
    page = client.get(url).content.decode()
    assert "result approved" in page and 'value="qc2"' in page
    refused = client.post(url, {"username": "qc2", "password": "wrong", "reason": ""})
    assert refused.status_code == 200 and "wrong password" in refused.content.decode()
    response = client.post(url, {"username": "qc2", "password": PASSWORD, "reason": ""})
    assert response.status_code == 302 and response["Location"] == reverse("admin:qc_qcresult_change",
                                                                           args=[result.pk])
    result = QCResult.objects.select_related("approval").get(pk=result.pk)
    assert result.approved_by == qc2 and result.approval.meaning == Meaning.RESULT_APPROVED


@pytest.mark.req("FEAT-QC-RESULTS", "ALCOA")
def test_admin_add_result_and_correct_it(client, packaged, chain, spec):
    from django.utils import timezone

    client.force_login(staff(chain.lab1))
    url = reverse("admin:qc_qcresult_add")
    assert client.get(url).status_code == 200
    item = spec.items.get(test="VEGF")
    when = timezone.localtime().strftime("%Y-%m-%d")
    base = {"lot": packaged.pk, "spec_item": item.pk, "unit_entered": "pg/mL", "analyst": chain.lab1.pk,
            "instrument": "ELISA-1", "tested_at_0": when, "tested_at_1": "00:01:00"}
    response = client.post(url, dict(base, value_entered="60"))
    assert response.status_code == 302, response.content.decode()[:2000]
    original = QCResult.objects.get()
    refused = client.post(url, dict(base, value_entered="600", corrects_result=original.pk))
    assert refused.status_code == 302 and QCResult.objects.count() == 1  # no reason: refused, shown as a message
    client.post(url, dict(base, value_entered="600", corrects_result=original.pk, correction_note="dilution"))
    original.refresh_from_db()
    assert original.status == "superseded" and QCResult.objects.get(supersedes=original).value_entered == "600"
    page = client.get(reverse("admin:qc_qcresult_change", args=[original.pk]))
    assert page.status_code == 200 and "lot sign-off page" in page.content.decode()
