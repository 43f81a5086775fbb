"""Verifying the audit chain from the admin ("Verify audit trail") and the API (GET /api/v1/audit/verification/):
an intact chain is OK, an entry edited by raw SQL is named, and only QC officers (and the superuser) may run it."""

import pytest
from django.test import Client
from django.urls import reverse

from cmlims import roles
from cmlims.audit import audited_create, audited_update, chain_head
from tests.auditfixture.models import FixtureRecord
from tests.support.builders import PASSWORD
from tests.support.tamper import tamper

pytestmark = pytest.mark.django_db
API = "/api/v1/audit/verification/"


@pytest.fixture
def qc(make_user):
    return make_user("qc1", roles.QC_OFFICER, is_staff=True)


@pytest.fixture
def client(qc):
    client = Client()
    assert client.login(username="qc1", password=PASSWORD)
    return client


@pytest.fixture
def edited(qc) -> int:
    """Four entries; the third edited by raw SQL past the append-only guard. Returns its sequence."""
    record = audited_create(FixtureRecord, actor=qc, name="R1")
    audited_update(record, actor=qc, quantity=2)
    audited_update(record, actor=qc, quantity=3)
    audited_update(record, actor=qc, quantity=4)
    target = chain_head().sequence - 1
    tamper("UPDATE cmlims_auditentry SET reason = %s WHERE sequence = %s", ["nothing happened", target])
    return target


@pytest.mark.req("README-AUDIT-CHAIN", "P11-11.10e", "A11-9")
def test_the_api_reports_an_intact_chain(auth_client, qc):
    audited_create(FixtureRecord, actor=qc, name="R1")
    head = chain_head()
    response = auth_client(qc).get(API)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["problems"] == []
    # The token issued to call the API is itself audited, so the chain reaches at least the head seen before.
    assert body["head"]["sequence"] >= head.sequence and body["entries_checked"] == body["head"]["sequence"]
    assert body["summary"].startswith("Audit trail intact")


@pytest.mark.req("README-AUDIT-CHAIN", "P11-11.10e")
def test_the_api_names_an_entry_edited_by_raw_sql(auth_client, qc, edited):
    response = auth_client(qc).get(API)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is False
    assert [(p["sequence"], p["kind"]) for p in body["problems"]] == [(edited, "hmac")]
    assert f"BROKEN at entry #{edited} (hmac)" in body["summary"]


@pytest.mark.req("README-AUDIT-CHAIN", "P11-11.10d")
def test_only_qc_officers_verify_over_the_api(auth_client, make_user, api_client):
    assert api_client.get(API).status_code == 401
    for user in (make_user("lab1", roles.LAB_STAFF), make_user("nobody")):
        response = auth_client(user).get(API)
        assert response.status_code == 403 and response.json()["code"] == "permission_denied", response.content


def test_the_endpoint_is_in_the_schema(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"][API]["get"]
    reference = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert reference == "#/components/schemas/AuditVerification"
    assert {"ok", "entries_checked", "head", "problems"} <= set(schema["components"]["schemas"]["AuditVerification"]
                                                               ["properties"])
    assert "post" not in schema["paths"][API]


@pytest.mark.req("README-AUDIT-CHAIN", "A11-9")
def test_the_admin_page_shows_an_intact_chain_and_is_linked_from_the_trail(client, qc):
    audited_create(FixtureRecord, actor=qc, name="R1")
    url = reverse("admin:cmlims_audit_verify")
    listing = client.get(reverse("admin:cmlims_auditentry_changelist"))
    assert listing.status_code == 200 and f'href="{url}"' in listing.content.decode()
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    head = chain_head()
    assert '<td id="verify-result">OK</td>' in page
    assert f"#{head.sequence} <code>{head.hash}</code>" in page and "Audit trail intact" in page
    assert 'id="verify-problems"' not in page


@pytest.mark.req("README-AUDIT-CHAIN", "P11-11.10e")
def test_the_admin_page_names_an_entry_edited_by_raw_sql(client, edited):
    page = client.get(reverse("admin:cmlims_audit_verify")).content.decode()
    assert '<td id="verify-result">BROKEN</td>' in page
    assert f"<tr><td>#{edited}</td><td>hmac</td>" in page
    assert f"BROKEN at entry #{edited} (hmac)" in page


@pytest.mark.req("README-AUDIT-CHAIN", "P11-11.10d")
def test_lab_staff_and_users_without_a_role_cannot_open_the_page(make_user, admin_client):
    url = reverse("admin:cmlims_audit_verify")
    for name, role in (("lab1", (roles.LAB_STAFF,)), ("nobody", ())):
        make_user(name, *role, is_staff=True)
        other = Client()
        assert other.login(username=name, password=PASSWORD)
        assert other.get(url).status_code == 403, name
    assert admin_client.get(url).status_code == 200  # the superuser reads the trail's state (takes no GMP action)
