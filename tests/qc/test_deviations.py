"""Deviations (211.192; issue 13 item 10): raised by lab staff or QC against a lot, run, harvest or shipment
(API and admin); an open one on the lot or a record it was made from blocks release (409 ``deviation_open``);
closing needs a root cause, an impact assessment and a QC officer's signature."""

import pytest

from batches.models import CMLot, LotStatus
from cmlims.esign.models import Meaning, Signature
from cmlims.exceptions import Conflict
from cmlims.investigations.deviations import deviation_raise
from cmlims.investigations.models import Investigation, Kind, Status
from cmlims.investigations.selectors import deviations_open
from cmlims.investigations.services import investigation_close
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD, make_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator(make_user):
    from cmlims import roles

    return make_user("ship1", roles.SHIPPING_COORDINATOR)


def raise_over_api(client, subject_type, subject_id, title="Incubator door left open 20 min"):
    return client.post("/api/v1/deviations/", {"subject_type": subject_type, "subject_id": str(subject_id),
                                               "title": title, "details": "found at 14:10 by lab1"}, format="json")


def release(client, lot):
    checklist = client.get(f"/api/v1/lots/{lot.lot_number}/signoff/").json()
    return client.post(f"/api/v1/lots/{lot.lot_number}/release/",
                       {"username": client.user.username, "password": PASSWORD,
                        "audit_reviewed_through": checklist["audit_review"]["confirm_through"]}, format="json")


def close_over_api(client, inv_id, **overrides):
    body = {"root_cause": "door sensor failed", "impact_assessment": "temperature stayed within 36-38 C; no impact",
            "conclusion": "product unaffected", "username": client.user.username, "password": PASSWORD, **overrides}
    return client.post(f"/api/v1/deviations/{inv_id}/close/", body, format="json")


@pytest.mark.req("FEAT-REC-DEVIATIONS", "211-192")
def test_open_deviation_on_a_lot_blocks_release_until_closed_with_root_cause_impact_and_signature(
        releasable, chain, auth_client):
    lab, qc = auth_client(chain.lab1), auth_client(chain.qc)
    raised = raise_over_api(lab, "lot", releasable.pk)
    assert raised.status_code == 201, raised.content
    body = raised.json()
    assert body["kind"] == "deviation" and body["status"] == "open" and body["opened_by"] == "lab1"
    assert body["subject"]["type"] == "batches.cmlot" and body["subject"]["id"] == str(releasable.pk)

    refused = release(qc, releasable)
    assert refused.status_code == 409
    assert [c["code"] for c in refused.json()["conditions"]] == ["deviation_open"]

    # Closing: a QC officer only; root cause and impact assessment named when missing; the password checked.
    assert close_over_api(lab, body["id"]).status_code == 403
    missing = close_over_api(qc, body["id"], root_cause=" ", impact_assessment="")
    assert missing.status_code == 400
    assert set(missing.json()["fields"]) == {"root_cause", "impact_assessment"}
    assert close_over_api(qc, body["id"], password="wrong").status_code == 400
    assert Investigation.objects.get(pk=body["id"]).status == Status.OPEN

    closed = close_over_api(qc, body["id"])
    assert closed.status_code == 200, closed.content
    assert closed.json()["status"] == "closed" and closed.json()["impact_assessment"].startswith("temperature")
    signature = Signature.objects.get(meaning=Meaning.DEVIATION_CLOSED)
    assert signature.subject.pk == body["id"] and signature.signer == chain.qc
    assert signature.content["root_cause"] == "door sensor failed"
    assert AuditEntry.objects.filter(object_type="investigations.investigation", object_id=str(body["id"]),
                                     changes__has_key="status").exists()

    released = release(qc, releasable)
    assert released.status_code == 200, released.content
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RELEASED


@pytest.mark.req("FEAT-REC-DEVIATIONS")
def test_a_deviation_on_a_harvest_or_run_of_the_lot_blocks_its_release(releasable, chain, auth_client):
    harvest = releasable.contributions.first().harvest
    lab, qc = auth_client(chain.lab1), auth_client(chain.qc)
    assert raise_over_api(lab, "harvest", harvest.pk, title="harvest volume misread").status_code == 201
    assert raise_over_api(lab, "drying_run", releasable.lyophilisation_run.pk, title="shelf probe").status_code == 201
    refused = release(qc, releasable)
    assert refused.status_code == 409
    assert [c["code"] for c in refused.json()["conditions"]] == ["deviation_open", "deviation_open"]
    assert "harvest volume misread" in refused.json()["conditions"][0]["detail"]


@pytest.mark.req("FEAT-REC-DEVIATIONS")
def test_who_may_raise_and_what_against(releasable, chain, auth_client, make_user, coordinator):
    from cmlims import roles

    shipper = auth_client(coordinator)
    assert raise_over_api(shipper, "lot", releasable.pk).status_code == 403
    robot = auth_client(make_user("robot", roles.INTEGRATION))
    assert raise_over_api(robot, "lot", releasable.pk).status_code == 403
    lab = auth_client(chain.lab1)
    unknown = raise_over_api(lab, "donor", 1)
    assert unknown.status_code == 400 and "subject_type" in unknown.json()["fields"]
    assert raise_over_api(lab, "lot", 999999).status_code == 404
    blank = lab.post("/api/v1/deviations/", {"subject_type": "lot", "subject_id": str(releasable.pk),
                                             "title": " ", "details": ""}, format="json")
    assert blank.status_code == 400 and set(blank.json()["fields"]) == {"title", "details"}
    assert raise_over_api(auth_client(chain.qc), "packaging_run", releasable.packaging_run.pk).status_code == 201


@pytest.mark.req("FEAT-REC-DEVIATIONS")
def test_a_deviation_on_a_shipment_and_the_unsigned_close_is_refused(coordinator):
    world = make_world(coordinator=coordinator)
    shipment = world.shipment()
    inv = deviation_raise(subject=shipment, actor=world.qc, title="pallet dropped", details="at dispatch")
    assert inv.kind == Kind.DEVIATION and inv.subject == shipment
    with pytest.raises(Conflict) as exc:
        investigation_close(investigation=inv, actor=world.qc, conclusion="fine")
    assert exc.value.code == "deviation_close_signed"


@pytest.mark.req("FEAT-REC-DEVIATIONS")
def test_open_deviations_selector_lists_them_oldest_first_in_one_query(releasable, chain, django_assert_num_queries):
    first = deviation_raise(subject=releasable, actor=chain.lab1, title="first", details="d")
    second = deviation_raise(subject=releasable.packaging_run, actor=chain.qc, title="second", details="d")
    with django_assert_num_queries(1):
        rows = [(d.pk, d.content_type.model, d.opened_by.username) for d in deviations_open()]
    assert rows == [(first.pk, "cmlot", "lab1"), (second.pk, "packagingrun", "qc1")]


@pytest.mark.req("FEAT-REC-DEVIATIONS")
def test_admin_raises_and_closes_a_deviation(releasable, chain, client):
    client.force_login(chain.lab1)
    add = client.post("/admin/investigations/investigation/add/", {
        "subject_type": "lot", "subject_id": str(releasable.pk), "title": "label roll swapped",
        "details": "spotted at line clearance"})
    assert add.status_code == 302, add.content.decode()[:2000]
    inv = Investigation.objects.get(title="label roll swapped")
    assert inv.kind == Kind.DEVIATION and inv.opened_by == chain.lab1 and inv.subject == releasable

    client.force_login(chain.qc)
    url = f"/admin/investigations/investigation/{inv.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b"impact_assessment" in page.content
    done = client.post(url, {"root_cause": "two rolls on one bench", "impact_assessment": "no vial labelled",
                             "conclusion": "line clearance SOP amended", "close": "on",
                             "username": chain.qc.username, "password": PASSWORD})
    assert done.status_code == 302
    inv.refresh_from_db()
    assert inv.status == Status.CLOSED and inv.closed_by == chain.qc
    assert Signature.objects.filter(meaning=Meaning.DEVIATION_CLOSED, signer=chain.qc).count() == 1
