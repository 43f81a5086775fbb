"""Sign-off: release, reject, recall with Part 11 signatures; every unmet condition listed; audit review;
"changed after signing" for signed fields only."""

from datetime import timedelta

import pytest
from django.urls import get_resolver, resolve, reverse

from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.audit import Action, audited_update
from cmlims.esign.models import Meaning, Signature
from cmlims.esign.services import signature_current_status
from cmlims.exceptions import Conflict
from cmlims.models import AuditEntry
from config.urls import LotRecallEndpoint
from qc.services.hold import lot_hold
from tests.support.builders import PASSWORD, approve, enter, lot_at, pass_all

pytestmark = pytest.mark.django_db


def checklist(client, lot):
    response = client.get(f"/api/v1/lots/{lot.lot_number}/signoff/")
    assert response.status_code == 200, response.content
    return response.json()


def sign(client, lot, action="release", *, password=PASSWORD, reason="", review=True, username=None):
    body = {"username": username or client.user.username, "password": password, "reason": reason}
    if review:
        body["audit_reviewed_through"] = checklist(client, lot)["audit_review"]["confirm_through"]
    return client.post(f"/api/v1/lots/{lot.lot_number}/{action}/", body, format="json")


def codes(response):
    return {c["code"] for c in response.json()["conditions"]}


@pytest.mark.req("A11-15", "P11-11.50", "A11-14")
def test_release_happy_path_signs_and_moves_the_lot(releasable, chain, auth_client):
    client = auth_client(chain.qc)
    before = checklist(client, releasable)
    assert [c["code"] for c in before["release_conditions"]] == ["audit_review_missing"]
    assert before["audit_review"]["entries_since"], "the officer sees the lot's trail before signing"
    response = sign(client, releasable, reason="all criteria met")
    assert response.status_code == 200, response.content
    signature = response.json()["signature"]
    assert signature["meaning"] == "released" and signature["printed_name"] == "Qc1 Tester"
    assert signature["changed_after_signing"] is False and len(signature["content_sha256"]) == 64
    lot = CMLot.objects.get(pk=releasable.pk)
    assert lot.status == LotStatus.RELEASED
    stored = Signature.objects.get(pk=signature["id"])
    assert stored.field_list_version == "lot-signoff/2"
    assert {"lot.lot_number", "audit_review", "harvest[CU-0001-H1].volume_ml", "donor[DN-0001].eligibility_status",
            "vials.count"} <= set(stored.signed_fields)
    assert stored.content["audit_review"]["reviewer_id"] == chain.qc.pk
    assert len({k.split("].")[0] for k in stored.signed_fields if k.startswith("result[")}) == 6
    # The lot payload shows the signature (printed name, time, meaning).
    release = client.get(f"/api/v1/lots/{lot.lot_number}/").json()["release"]
    assert release["signed_by"] == "Qc1 Tester" and release["meaning"] == "released"
    # A second release of the same lot: 409, still one signature.
    again = sign(client, lot)
    assert again.status_code == 409 and "wrong_status" in codes(again)
    assert Signature.objects.filter(meaning=Meaning.RELEASED).count() == 1


@pytest.mark.req("A11-15", "P11-11.10g")
def test_release_without_role_is_403(releasable, chain, auth_client):
    response = sign(auth_client(chain.lab2), releasable, review=False)
    assert response.status_code == 403


@pytest.mark.req("P11-11.300", "P11-11.200a")
def test_wrong_password_is_400_audited_and_five_lock_with_423(releasable, chain, auth_client):
    client = auth_client(chain.qc)
    for attempt in range(1, 5):
        response = sign(client, releasable, password="wrong", review=False)
        assert response.status_code == 400 and "password" in response.json()["fields"], attempt
    response = sign(client, releasable, password="wrong", review=False)
    assert response.status_code == 423 and response.json()["code"] == "signing_locked"
    assert 0 < response.json()["retry_after"] <= 15 * 60
    locked = sign(client, releasable)  # the right password, but locked
    assert locked.status_code == 423
    assert AuditEntry.objects.filter(action=Action.SIGNATURE_FAILED, user=chain.qc).count() == 6
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.QC_COMPLETE


@pytest.mark.req("P11-11.200a")
def test_user_name_must_be_the_callers(releasable, chain, auth_client, qc2):
    response = sign(auth_client(chain.qc), releasable, username="qc2")
    assert response.status_code == 400 and "username" in response.json()["fields"]


@pytest.mark.req("RULE-3", "211-192", "1271-265")
def test_409_lists_every_unmet_condition(chain, spec, qc2, auth_client):
    from batches.models import CellSource

    lot = lot_at(chain, LotStatus.PACKAGED)
    pass_all(lot, analyst=chain.lab1, approver=qc2, skip=("Sterility", "pH (reconstituted)"))
    approve(enter(lot, "pH (reconstituted)", "8.6", "pH", analyst=chain.lab1), qc2)  # fails, opens an OOS
    enter(lot, "TGF-beta1", "300", "pg/mL", analyst=chain.lab1, actor=chain.qc)  # the signer entered a result
    donor = CellSource.objects.get(pk=chain.source.pk)
    audited_update(donor, actor=chain.lab1, eligibility_status="ineligible", reason="late positive serology")
    lot_hold(lot=lot, actor=qc2, reason="OOS pH")
    response = sign(auth_client(chain.qc), lot, review=False)
    assert response.status_code == 409, response.content
    assert codes(response) == {
        "wrong_status", "on_hold", "result_missing", "result_failed", "investigation_open", "donor_not_eligible",
        "signer_entered_results", "audit_review_missing",
    }
    details = " ".join(c["detail"] for c in response.json()["conditions"])
    assert "Sterility" in details and "pH (reconstituted)" in details and chain.source.code in details
    assert not Signature.objects.filter(meaning=Meaning.RELEASED).exists()


@pytest.mark.req("RULE-2")
def test_signer_who_performed_or_verified_a_step_may_not_release(chain, spec, qc2, auth_client, make_user):
    from batches.services.lots import lot_transition

    lot = lot_at(chain, LotStatus.PACKAGED)
    pass_all(lot, analyst=chain.lab1, approver=chain.qc)
    lot = lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    # lab2 verified the steps; give them the QC officer role as well: still not clear under rule 2.
    from django.contrib.auth.models import Group

    chain.lab2.groups.add(Group.objects.get(name=roles.QC_OFFICER))
    response = sign(auth_client(chain.lab2), lot)
    assert response.status_code == 409 and codes(response) == {"signer_participated"}
    # qc2 approved results (not entered): clear.
    assert sign(auth_client(qc2), lot).status_code == 200


@pytest.mark.req("RULE-2", "INTEG-SIGN-VERIFY-CLEARED")
def test_a_verifier_whose_verification_an_edit_cleared_still_may_not_release(chain, spec, auth_client, make_user):
    from batches.models import Culture
    from batches.selectors import lot_participant_ids
    from batches.services.cultures import culture_update
    from batches.services.lots import lot_transition
    from batches.services.records import step_verify

    lot = lot_at(chain, LotStatus.PACKAGED)
    pass_all(lot, analyst=chain.lab1, approver=chain.qc)
    lot = lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    both = make_user("labqc", roles.LAB_STAFF, roles.QC_OFFICER)
    culture = Culture.objects.filter(harvests__contributions__lot=lot).distinct().get()
    culture = culture_update(culture=culture, actor=chain.lab1, medium_lot="MED-2")  # clears lab2's check
    culture = step_verify(record=culture, actor=both)
    culture_update(culture=culture, actor=chain.lab1, medium_lot="MED-3")  # clears labqc's check
    assert Culture.objects.get(pk=culture.pk).verified_by_id is None
    # The record no longer names labqc, the trail does: they checked a step of this lot.
    assert both.pk in lot_participant_ids(lot) and chain.lab1.pk in lot_participant_ids(lot)
    response = sign(auth_client(both), lot)
    assert response.status_code == 409 and "signer_participated" in codes(response)


@pytest.mark.req("A11-9", "RULE-3")
def test_audit_review_must_cover_the_newest_entries(releasable, chain, auth_client, qc2):
    client = auth_client(chain.qc)
    seen = checklist(client, releasable)["audit_review"]["confirm_through"]
    lot_hold(lot=releasable, actor=qc2, reason="check label")  # new entries after the review
    from qc.services.hold import lot_unhold

    lot_unhold(lot=releasable, actor=qc2, reason="label fine")
    response = client.post(f"/api/v1/lots/{releasable.lot_number}/release/",
                           {"username": "qc1", "password": PASSWORD, "audit_reviewed_through": seen}, format="json")
    assert response.status_code == 409 and codes(response) == {"audit_review_stale"}
    # Confirming the review separately also works, and the release then signs that review.
    newest = checklist(client, releasable)["audit_review"]["confirm_through"]
    beyond = client.post(f"/api/v1/lots/{releasable.lot_number}/audit-review/", {"reviewed_through": 10**9},
                         format="json")
    assert beyond.status_code == 400, beyond.content  # the field this operation takes is named
    assert beyond.json()["fields"] == {"reviewed_through": [f"#{10**9} is beyond the newest audit entry"]}
    review = client.post(f"/api/v1/lots/{releasable.lot_number}/audit-review/", {"reviewed_through": newest},
                         format="json")
    assert review.status_code == 201 and review.json()["entries_reviewed"] > 0
    response = sign(client, releasable, review=False)
    assert response.status_code == 200, response.content
    assert Signature.objects.get(meaning="released").content["audit_review"]["reviewed_through"] == newest


@pytest.mark.req("FEAT-SIGNOFF")
def test_reject_needs_a_reason_and_works_from_packaged(chain, spec, qc2, auth_client):
    lot = lot_at(chain, LotStatus.PACKAGED)
    enter(lot, "Sterility", "growth", analyst=chain.lab1)
    client = auth_client(chain.qc)
    response = sign(client, lot, "reject", review=False)
    assert response.status_code == 400 and "reason" in response.json()["fields"]
    response = sign(client, lot, "reject", reason="sterility failure", review=False)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == LotStatus.REJECTED
    assert response.json()["signature"]["reason"] == "sterility failure"
    # A rejected lot is finished: it is not put on hold, and no result is recorded on it any more.
    held = client.post(f"/api/v1/lots/{lot.lot_number}/hold/", {"reason": "late query"}, format="json")
    assert held.status_code == 409 and codes(held) == {"wrong_status"}
    with pytest.raises(Conflict):
        enter(lot, "VEGF", "600", "pg/mL", analyst=chain.lab1)


@pytest.mark.req("FEAT-SIGNOFF")
def test_recall_of_a_released_lot(releasable, chain, qc2, auth_client):
    assert sign(auth_client(chain.qc), releasable).status_code == 200
    client = auth_client(qc2)
    assert sign(client, releasable, "recall", review=False).status_code == 400
    response = sign(client, releasable, "recall", reason="complaint: particles in reconstituted vial")
    assert response.status_code == 200 and response.json()["status"] == LotStatus.RECALLED
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RECALLED


def _route_names(resolver):
    for pattern in resolver.url_patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _route_names(pattern)
        else:
            yield pattern.name


def test_lot_recall_is_one_route_for_the_signed_recall_and_the_recall_report(releasable, chain, qc2, auth_client):
    url = reverse("lot-recall", args=[releasable.lot_number])
    assert url == f"/api/v1/lots/{releasable.lot_number}/recall/"
    assert resolve(url).func.view_class is LotRecallEndpoint
    # One route by that name (a second one behind it would never answer): count them across every include.
    assert sum(1 for name in _route_names(get_resolver()) if name == "lot-recall") == 1
    assert sign(auth_client(chain.qc), releasable).status_code == 200
    client = auth_client(qc2)
    body = {"username": "qc2", "password": PASSWORD, "reason": "complaint: particles in reconstituted vial"}
    assert client.post(url, body, format="json").json()["status"] == LotStatus.RECALLED
    report = auth_client(chain.qc).get(url)
    assert report.status_code == 200 and report.json()["recall_of"] == {"type": "lot", "id": releasable.lot_number}


@pytest.mark.req("A11-15", "P11-11.10f")
def test_generic_transition_cannot_release(releasable, chain, auth_client):
    response = auth_client(chain.qc).post(f"/api/v1/lots/{releasable.lot_number}/transitions/",
                                          {"to": "released", "reason": "x"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "signature_required"


@pytest.mark.req("P11-11.70", "A11-14")
def test_changed_after_signing_for_a_signed_field_only(releasable, chain, auth_client, qc2):
    client = auth_client(chain.qc)
    assert sign(client, releasable).status_code == 200
    signature = Signature.objects.get(meaning="released")

    # Unsigned fields (hold flag and reason) change: the signature still matches.
    lot_hold(lot=releasable, actor=qc2, reason="customer query, checking")
    after_hold = checklist(client, releasable)["signatures"][0]
    assert after_hold["changed_after_signing"] is False
    assert signature_current_status(signature, CMLot.objects.get(pk=releasable.pk)).changed_after_signing is False

    # A signed field (expiry) changes, with the reason a signed record demands: shown everywhere.
    lot = CMLot.objects.get(pk=releasable.pk)
    audited_update(lot, actor=qc2, reason="shelf life corrected per stability data", clean=False,
                   expiry=lot.expiry - timedelta(days=30))
    after_edit = checklist(client, releasable)["signatures"][0]
    assert after_edit["changed_after_signing"] is True and after_edit["changed_fields"] == ["lot.expiry"]
    status = signature_current_status(signature, CMLot.objects.get(pk=releasable.pk))
    assert status.changed_after_signing and status.changed_fields == ["lot.expiry"]


@pytest.mark.req("P11-11.70")
def test_result_approval_shows_changed_after_signing_once_corrected(packaged, chain, qc2, auth_client):
    from qc.services.results import result_correct

    result = approve(enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1), qc2)
    client = auth_client(chain.qc)
    assert client.get(f"/api/v1/qc/results/{result.pk}/").json()["approval"]["changed_after_signing"] is False
    result_correct(result=result, actor=chain.lab1, value="650", unit="pg/mL", reason="wrong dilution factor")
    body = client.get(f"/api/v1/qc/results/{result.pk}/").json()
    assert body["status"] == "superseded" and body["approval"]["changed_after_signing"] is True


def test_checklist_query_count_does_not_grow_with_results(packaged, chain, qc2, auth_client,
                                                          django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = auth_client(chain.qc)
    url = f"/api/v1/lots/{packaged.lot_number}/signoff/"
    enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    pass_all(packaged, analyst=chain.lab1, approver=qc2)
    enter(packaged, "pH (reconstituted)", "8.9", "pH", analyst=chain.lab2)  # and an open investigation
    with django_assert_num_queries(len(few.captured_queries)):
        body = client.get(url).json()
    assert len(body["investigations"]) == 1 and body["audit_review"]["entries_since"]


# --- the release signature on the lot: API (list, detail) and admin, "changed after signing" everywhere ---------

def _make_releasable(chain, qc2):
    from batches.services.lots import lot_transition

    lot = lot_at(chain, LotStatus.PACKAGED)
    pass_all(lot, analyst=chain.lab1, approver=qc2)
    return lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc)


def _lot_views(client, admin_client, lot):
    """The release as the lot list, the lot detail, the admin changelist and the admin change page show it."""
    from django.urls import reverse

    item = next(i for i in client.get("/api/v1/lots/").json()["results"] if i["lot_number"] == lot.lot_number)
    detail = client.get(f"/api/v1/lots/{lot.lot_number}/").json()
    changelist = admin_client.get(reverse("admin:batches_cmlot_changelist")).content.decode()
    change = admin_client.get(reverse("admin:batches_cmlot_change", args=[lot.pk])).content.decode()
    return item["release"], detail["release"], changelist, change


@pytest.mark.req("P11-11.70", "P11-11.50")
def test_lot_payload_and_admin_show_changed_after_signing_for_signed_fields_only(releasable, chain, auth_client,
                                                                                  qc2, client):
    api = auth_client(chain.qc)
    assert sign(api, releasable, reason="all criteria met").status_code == 200
    chain.qc.is_staff = True
    chain.qc.save()
    client.force_login(chain.qc)

    printed = Signature.objects.get(meaning="released").printed_name
    lot_hold(lot=releasable, actor=qc2, reason="customer query, checking")  # unsigned fields
    listed, detail, changelist, change = _lot_views(api, client, releasable)
    for release in (listed, detail):
        assert release["meaning"] == "released" and release["signed_by"] == printed and release["signed_at"]
        assert release["changed_after_signing"] is False and release["changed_fields"] == []
    for page in (changelist, change):
        assert f"{printed} · " in page and " · released" in page and "changed after signing" not in page

    lot = CMLot.objects.get(pk=releasable.pk)
    audited_update(lot, actor=qc2, reason="shelf life corrected per stability data", clean=False,
                   expiry=lot.expiry - timedelta(days=30))
    listed, detail, changelist, change = _lot_views(api, client, releasable)
    for release in (listed, detail):
        assert release["changed_after_signing"] is True and release["changed_fields"] == ["lot.expiry"]
    for page in (changelist, change):
        assert "changed after signing: lot.expiry" in page


def test_lot_list_query_count_stays_constant_with_released_lots(chain, spec, qc2, auth_client, client):
    """A list page reads each sign-off's stored check (fresh: no content rebuilt, the same queries for one
    signed lot or three); a write to a signed record makes that check stale, and the page then rebuilds the
    stale ones from their records, in the same queries for one or two; the refresh stores them again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from cmlims.esign.services import signature_checks_refresh

    api = auth_client(chain.qc)
    chain.qc.is_staff = True
    chain.qc.save()
    client.force_login(chain.qc)
    admin_url = reverse("admin:batches_cmlot_changelist")

    def listed() -> tuple[list[dict], int, str, int]:
        with CaptureQueriesContext(connection) as api_queries:
            body = api.get("/api/v1/lots/").json()
        with CaptureQueriesContext(connection) as admin_queries:
            page = client.get(admin_url).content.decode()
        return ([i["release"] for i in body["results"] if i["release"]], len(api_queries.captured_queries),
                page, len(admin_queries.captured_queries))

    first = _make_releasable(chain, qc2)
    assert sign(api, first, reason="ok").status_code == 200
    assert signature_checks_refresh()["stored"] == 1
    listed()  # warm caches (content types, the session)
    releases, fresh_api, _, fresh_admin = listed()
    lots = [first]
    for _ in range(2):
        lot = _make_releasable(chain, qc2)
        assert sign(api, lot, reason="ok").status_code == 200
        lots.append(lot)
    releases, _, _, _ = listed()
    assert len(releases) == 3 and not any(r["changed_after_signing"] for r in releases)
    assert [bool(r["checked_at"]) for r in releases] == [False, False, True], "new ones: checked from records"
    assert signature_checks_refresh()["stored"] == 2
    releases, api_n, _, admin_n = listed()
    assert all(r["checked_at"] for r in releases), "read from the stored checks"
    assert (api_n, admin_n) == (fresh_api, fresh_admin)

    stale = []
    for lot in lots[:2]:
        lot = CMLot.objects.get(pk=lot.pk)
        audited_update(lot, actor=qc2, reason="correction", clean=False, expiry=lot.expiry - timedelta(days=1))
        releases, api_n, page, admin_n = listed()
        stale.append((api_n, admin_n))
        assert sum(r["changed_after_signing"] for r in releases) == len(stale), "shown at once, not at the refresh"
        assert page.count("changed after signing") == len(stale)
    assert stale[0] == stale[1] and stale[0][0] > fresh_api

    assert signature_checks_refresh() == {"checked": 2, "stored": 2, "changed": 2}
    releases, api_n, page, admin_n = listed()
    assert (api_n, admin_n) == (fresh_api, fresh_admin)
    assert sum(r["changed_after_signing"] for r in releases) == 2 and page.count("changed after signing") == 2
    assert all(r["checked_at"] for r in releases)


def test_lot_admin_links_to_the_signoff_page(releasable, chain, client):
    from django.urls import reverse

    chain.qc.is_staff = True
    chain.qc.save()
    client.force_login(chain.qc)
    url = reverse("admin:qc_lot_signoff", args=[releasable.lot_number])
    assert url in client.get(reverse("admin:batches_cmlot_change", args=[releasable.pk])).content.decode()
    assert url in client.get(reverse("admin:batches_cmlot_changelist")).content.decode()
    assert client.get(url).status_code == 200



@pytest.mark.parametrize("action", ["release", "reject", "recall"])
@pytest.mark.req("FEAT-SIGNOFF", "P11-11.10g")
def test_every_signoff_endpoint_answers_403_400_409_423_and_200(action, chain, spec, qc2, auth_client):
    """Each endpoint: 403 without the role, 400 wrong password, 409 unmet conditions, 423 locked, 200 signed."""
    from cmlims.esign.models import SigningFailure
    from qc.services.hold import lot_unhold

    lot = _make_releasable(chain, qc2)
    reason = "" if action == "release" else "documented reason"
    officer = auth_client(chain.qc)

    # 409: an unmet condition (release: the lot is on hold; reject: a released lot; recall: a lot not released).
    if action == "release":
        lot_hold(lot=lot, actor=qc2, reason="query")
        conflict, expected = sign(officer, lot, action), "on_hold"
        lot_unhold(lot=lot, actor=qc2, reason="answered")
    elif action == "reject":
        released = _make_releasable(chain, qc2)
        assert sign(auth_client(qc2), released, reason="ok").status_code == 200
        conflict, expected = sign(officer, released, action, reason=reason), "wrong_status"
    else:
        conflict, expected = sign(officer, lot, action, reason=reason), "wrong_status"
        assert sign(auth_client(qc2), lot, reason="ok").status_code == 200  # now released: recall applies
    assert conflict.status_code == 409 and expected in codes(conflict), conflict.content

    assert sign(auth_client(chain.lab2), lot, action, reason=reason, review=False).status_code == 403
    for _ in range(4):
        wrong = sign(officer, lot, action, password="wrong", reason=reason, review=False)
        assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    locked = sign(officer, lot, action, password="wrong", reason=reason, review=False)
    assert locked.status_code == 423 and locked.json()["code"] == "signing_locked" and locked.json()["retry_after"]
    assert sign(officer, lot, action, reason=reason).status_code == 423  # the right password, still locked
    # Once the 15 minutes are over, the right credentials sign.
    state = SigningFailure.objects.get(user=chain.qc)
    SigningFailure.objects.filter(pk=state.pk).update(locked_until=state.locked_until - timedelta(minutes=15))
    response = sign(officer, lot, action, reason=reason)
    assert response.status_code == 200, response.content
    meaning = {"release": "released", "reject": "rejected", "recall": "recalled"}[action]
    assert response.json()["signature"]["meaning"] == meaning
    # Every sign-off signature shows on the lot (release, rejection, recall), in the list and the detail.
    expected = ["released", "recalled"] if action == "recall" else [meaning]
    detail = officer.get(f"/api/v1/lots/{lot.lot_number}/").json()
    listed = next(i for i in officer.get("/api/v1/lots/").json()["results"] if i["lot_number"] == lot.lot_number)
    for body in (detail, listed):
        assert [s["meaning"] for s in body["signoffs"]] == expected
        assert (body["release"] or {}).get("meaning") == ("released" if "released" in expected else None)


def test_a_meaning_that_does_not_match_the_endpoint_is_refused(releasable, chain, auth_client):
    client = auth_client(chain.qc)
    through = checklist(client, releasable)["audit_review"]["confirm_through"]
    response = client.post(f"/api/v1/lots/{releasable.lot_number}/release/", {
        "username": "qc1", "password": PASSWORD, "meaning": "rejected", "reason": "x",
        "audit_reviewed_through": through}, format="json")
    assert response.status_code == 400 and "meaning" in response.json()["fields"]
    assert not Signature.objects.filter(object_id=str(releasable.pk), meaning__in=["released", "rejected"]).exists()
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.QC_COMPLETE
    body = {"username": "qc1", "password": PASSWORD, "meaning": "released", "audit_reviewed_through": through}
    assert client.post(f"/api/v1/lots/{releasable.lot_number}/release/", body, format="json").status_code == 200
