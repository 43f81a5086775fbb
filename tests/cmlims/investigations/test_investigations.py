"""Investigations: opened on any subject, progressed and closed by a QC officer with a conclusion."""

import pytest

from cmlims import roles
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from cmlims.investigations.models import Investigation, Kind, Phase, Status
from cmlims.investigations.selectors import investigations_on
from cmlims.investigations.services import investigation_close, investigation_open, investigation_update
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user):
    return make_user("lab1", roles.LAB_STAFF), make_user("qc1", roles.QC_OFFICER)


def open_on(subject, actor, kind=Kind.OOS):
    return investigation_open(subject=subject, kind=kind, title="pH 8.4 above 8.0", actor=actor, details="auto")


def test_open_on_any_subject_is_audited(people):
    lab, _ = people
    inv = open_on(lab, lab, kind=Kind.TEMPERATURE_EXCURSION)
    assert inv.status == Status.OPEN and inv.phase == Phase.PHASE_1
    assert inv.subject == lab and inv.number == f"INV-{inv.pk:06d}"
    assert AuditEntry.objects.filter(object_type="investigations.investigation", object_id=str(inv.pk)).exists()
    assert list(investigations_on([(type(lab), [lab.pk])], open_only=True)) == [inv]


def test_unknown_kind_refused(people):
    lab, _ = people
    with pytest.raises(InvalidInput):
        investigation_open(subject=lab, kind="gossip", title="x", actor=lab)


@pytest.mark.req("P11-11.10g")
def test_only_a_qc_officer_progresses_or_closes(people):
    lab, _ = people
    inv = open_on(lab, lab)
    with pytest.raises(PermissionDenied):
        investigation_update(investigation=inv, actor=lab, phase=Phase.PHASE_2)
    with pytest.raises(PermissionDenied):
        investigation_close(investigation=inv, actor=lab, conclusion="fine", related_lots_checked="none")


@pytest.mark.req("211-192")
def test_close_needs_conclusion_and_related_lots_for_oos(people):
    lab, qc = people
    inv = open_on(lab, lab)
    with pytest.raises(InvalidInput) as exc:
        investigation_close(investigation=inv, actor=qc, conclusion=" ")
    assert set(exc.value.extra["fields"]) == {"conclusion", "related_lots_checked"}
    investigation_update(investigation=inv, actor=qc, phase=Phase.PHASE_2, root_cause="pipetting error")
    closed = investigation_close(investigation=inv, actor=qc, conclusion="lab error confirmed; retest passes",
                                 related_lots_checked="CM26-0002, CM26-0003: same analyst, results unaffected",
                                 username="qc1", password=PASSWORD)
    assert closed.status == Status.CLOSED and closed.closed_by == qc and closed.closed_at
    assert closed.root_cause == "pipetting error" and closed.phase == Phase.PHASE_2
    with pytest.raises(Conflict):
        investigation_close(investigation=closed, actor=qc, conclusion="again", related_lots_checked="x")
    with pytest.raises(Conflict):
        investigation_update(investigation=closed, actor=qc, root_cause="changed")


def test_excursion_closes_without_related_lots_but_with_the_product_disposition(people):
    lab, qc = people
    inv = open_on(lab, lab, kind=Kind.TEMPERATURE_EXCURSION)
    with pytest.raises(InvalidInput) as exc:
        investigation_close(investigation=inv, actor=qc, conclusion="logger fault")
    assert set(exc.value.extra["fields"]) == {"product_disposition"}
    with pytest.raises(InvalidInput) as exc:
        investigation_close(investigation=inv, actor=qc, conclusion="logger fault", product_disposition="maybe")
    assert set(exc.value.extra["fields"]) == {"product_disposition"}
    closed = investigation_close(investigation=inv, actor=qc, conclusion="logger fault", product_disposition="usable")
    assert closed.status == Status.CLOSED and closed.product_disposition == "usable"


def test_disposition_recorded_while_open_is_kept_at_close(people, auth_client):
    lab, qc = people
    inv = open_on(lab, lab, kind=Kind.TEMPERATURE_EXCURSION)
    client = auth_client(qc)
    assert client.patch(f"/api/v1/investigations/{inv.pk}/", {"product_disposition": "bad"},
                        format="json").status_code == 400
    response = client.patch(f"/api/v1/investigations/{inv.pk}/", {"product_disposition": "not_usable"}, format="json")
    assert response.status_code == 200 and response.json()["product_disposition"] == "not_usable"
    response = client.post(f"/api/v1/investigations/{inv.pk}/close/", {"conclusion": "9 °C for 3 h: discard"},
                           format="json")
    assert response.status_code == 200, response.content
    assert response.json()["product_disposition"] == "not_usable"


@pytest.mark.req("211-192")
def test_api_close(people, auth_client, django_assert_num_queries):
    lab, qc = people
    inv = open_on(lab, lab)
    client = auth_client(qc)
    response = client.post(f"/api/v1/investigations/{inv.pk}/close/", {"conclusion": ""}, format="json")
    assert response.status_code == 400 and "conclusion" in response.json()["fields"]
    response = client.post(f"/api/v1/investigations/{inv.pk}/close/",
                           {"conclusion": "analyst error", "related_lots_checked": "none affected",
                            "username": "qc1", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"
    assert auth_client(lab).post(f"/api/v1/investigations/{inv.pk}/close/", {"conclusion": "x"},
                                 format="json").status_code == 403
    for _ in range(3):
        open_on(lab, lab)
    # the token with its user and roles; the page (users, signatures joined; types cached)
    with django_assert_num_queries(2):
        listing = client.get("/api/v1/investigations/")
    assert listing.status_code == 200 and len(listing.json()["results"]) == 4
    assert Investigation.objects.get(pk=inv.pk).conclusion == "analyst error"


def test_admin_closes_an_excursion_only_with_the_product_disposition(people, client):
    lab, qc = people
    qc.is_staff = True
    qc.save()
    client.force_login(qc)
    inv = open_on(lab, lab, kind=Kind.TEMPERATURE_EXCURSION)
    url = f"/admin/investigations/investigation/{inv.pk}/change/"
    form = {"phase": "phase_1", "root_cause": "door left open", "related_lots_checked": "", "conclusion": "discard",
            "product_disposition": "", "close": "on", "change_reason": ""}
    response = client.post(url, form, follow=True)
    assert "disposition" in " ".join(str(m) for m in response.context["messages"])
    assert Investigation.objects.get(pk=inv.pk).status == Status.OPEN
    response = client.post(url, {**form, "product_disposition": "not_usable"})
    assert response.status_code == 302
    closed = Investigation.objects.get(pk=inv.pk)
    assert (closed.status, closed.product_disposition, closed.root_cause) == (Status.CLOSED, "not_usable",
                                                                             "door left open")
