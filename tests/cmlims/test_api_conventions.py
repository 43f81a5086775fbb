"""API conventions (DESIGN.md): error bodies and status codes, token auth, pagination, schema.

Every request goes through the real stack: URL routing, authentication, the one exception handler.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.request import Request

from cmlims import roles
from cmlims.api.pagination import CursorPagination
from cmlims.audit import Action, audited_bulk_create, audited_update
from cmlims.models import ApiToken, AuditEntry
from tests.support.builders import PASSWORD


def token_for(api_client, username: str, password: str = PASSWORD) -> str:
    response = api_client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.req("README-API-ERRORS")
def test_validation_error_is_400_invalid_naming_each_field(api_client):
    response = api_client.post("/api/v1/auth/token/", {"username": "qc1"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["fields"] == {"password": ["This field is required."]}
    assert "password" in body["message"]


@pytest.mark.django_db
@pytest.mark.req("README-API-ERRORS")
def test_malformed_json_is_400_not_500(api_client):
    response = api_client.post("/api/v1/auth/token/", data="{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.django_db
@pytest.mark.req("P11-11.10d", "README-API-ERRORS")
def test_unauthenticated_is_401_with_www_authenticate(api_client):
    response = api_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {
        "code": "not_authenticated", "message": "Authentication credentials were not provided.",
    }


@pytest.mark.django_db
@pytest.mark.req("P11-11.10d", "README-TOKENS")
def test_unknown_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 48)

    response = api_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.req("P11-11.10g", "README-API-ERRORS")
def test_permission_error_is_403_permission_denied(make_user, auth_client):
    owner = make_user("robot", roles.INTEGRATION)
    other = make_user("lab1", roles.LAB_STAFF)
    owner_client = auth_client(owner)
    token = ApiToken.objects.get(user=owner)

    response = auth_client(other).post(f"/api/v1/auth/tokens/{token.pk}/revoke/", {}, format="json")

    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied", "message": "Only the token's owner or an administrator may revoke it.",
    }
    token.refresh_from_db()
    assert token.revoked_at is None
    assert owner_client.get("/api/v1/me/").status_code == 200


@pytest.mark.django_db
def test_unknown_route_is_404_json(make_user, auth_client):
    client = auth_client(make_user("qc1", roles.QC_OFFICER))

    response = client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "No route for /api/v1/no-such-thing/."}


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/vials/%00/trace/", "/api/v1/lots/CM26%000001/",
                                 "/api/v1/lots/?search=%00", "/admin/batches/cmlot/?q=a%00b"])
@pytest.mark.req("README-API-ERRORS")
def test_a_nul_character_in_the_url_is_400_not_500(make_user, auth_client, url):
    """PostgreSQL cannot compare text with NUL: refused before any lookup, on every database."""
    client = auth_client(make_user("lab1", roles.LAB_STAFF, is_staff=True))

    response = client.get(url)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and response.json()["fields"]
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_unknown_object_is_404_not_found(make_user, auth_client):
    client = auth_client(make_user("qc1", roles.QC_OFFICER))

    response = client.post("/api/v1/auth/tokens/987654/revoke/", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No token with id 987654."}


@pytest.mark.django_db
def test_wrong_method_is_405_with_code(make_user, auth_client):
    client = auth_client(make_user("qc1", roles.QC_OFFICER))

    response = client.delete("/api/v1/me/")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- tokens ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.req("RULE-8", "README-TOKENS")
def test_token_issue_returns_token_and_expiry_and_is_audited(make_user, api_client, settings):
    user = make_user("robot", roles.INTEGRATION)
    before = timezone.now()

    response = api_client.post("/api/v1/auth/token/", {"username": "robot", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    body = response.json()
    token = ApiToken.objects.get(user=user)
    assert token.digest == ApiToken.digest_of(body["token"])  # only the digest is stored
    assert body["token"] not in {token.digest, token.prefix}
    expires = token.expires_at
    assert before + settings.CMLIMS_TOKEN_TTL <= expires <= timezone.now() + settings.CMLIMS_TOKEN_TTL
    assert timedelta(hours=8) == settings.CMLIMS_TOKEN_TTL
    entry = AuditEntry.objects.get(action=Action.TOKEN_ISSUED)
    assert (entry.user_id, entry.object_id) == (user.pk, str(token.pk))
    assert "digest" not in entry.changes


@pytest.mark.django_db
@pytest.mark.req("P11-11.300", "README-TOKENS")
def test_failed_login_is_401_and_audited(make_user, api_client):
    user = make_user("qc1", roles.QC_OFFICER)

    response = api_client.post("/api/v1/auth/token/", {"username": "qc1", "password": "wrong"}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    failed = AuditEntry.objects.filter(action=Action.LOGIN_FAILED)
    assert list(failed.values_list("object_repr", "user_id")) == [("qc1", None)]
    assert failed.get().object_id == str(user.pk)  # the account tried, named in object_repr
    assert not ApiToken.objects.exists()


@pytest.mark.django_db
@pytest.mark.req("P11-11.10d", "RULE-8", "README-TOKENS")
def test_expired_token_is_401(make_user, api_client):
    user = make_user("robot", roles.INTEGRATION)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(api_client, 'robot')}")
    assert api_client.get("/api/v1/me/").status_code == 200
    token = ApiToken.objects.get(user=user)
    with transaction.atomic():
        audited_update(token, actor=user, reason="test: expire", expires_at=timezone.now() - timedelta(seconds=1))

    response = api_client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "message": "Token has expired; request a new one."}
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.django_db
@pytest.mark.req("RULE-8", "README-TOKENS")
def test_revoked_token_is_401_and_revocation_is_audited(make_user, api_client):
    user = make_user("robot", roles.INTEGRATION)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(api_client, 'robot')}")
    token = ApiToken.objects.get(user=user)

    response = api_client.post(f"/api/v1/auth/tokens/{token.pk}/revoke/", {"reason": "rotated"}, format="json")

    assert response.status_code == 200
    assert response.json()["live"] is False
    assert api_client.get("/api/v1/me/").status_code == 401
    entry = AuditEntry.objects.get(action=Action.TOKEN_REVOKED)
    assert (entry.user_id, entry.object_id, entry.reason) == (user.pk, str(token.pk), "rotated")
    assert entry.changes["revoked_at"][0] is None


@pytest.mark.django_db
@pytest.mark.req("P11-11.10d")
def test_inactive_user_token_is_401(make_user, api_client):
    user = make_user("robot", roles.INTEGRATION)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(api_client, 'robot')}")
    user.is_active = False
    user.save()

    assert api_client.get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
def test_session_auth_works_for_admin_users(client, make_user):
    user = make_user("qc1", roles.QC_OFFICER, first_name="Priya", last_name="Raman")
    client.force_login(user)

    response = client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["printed_name"] == "Priya Raman"


@pytest.mark.django_db
def test_me_returns_printed_name_and_roles(make_user, auth_client, django_assert_num_queries):
    user = make_user("qc1", roles.QC_OFFICER, first_name="Priya", last_name="Raman")
    client = auth_client(user)

    with django_assert_num_queries(1):  # the token with its user and the user's roles, in one query
        response = client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json() == {
        "username": "qc1", "first_name": "Priya", "last_name": "Raman", "printed_name": "Priya Raman",
        "email": "", "roles": [roles.QC_OFFICER], "is_superuser": False,
    }


# --- pagination -----------------------------------------------------------------------------------


def _paginator_page_size(query: str) -> int:
    request = Request(RequestFactory().get(f"/api/v1/auth/tokens/?{query}"))
    return CursorPagination().get_page_size(request)


def test_cursor_pagination_page_size_defaults_to_50_and_is_capped_at_500():
    assert _paginator_page_size("") == 50
    assert _paginator_page_size("page_size=7") == 7
    assert _paginator_page_size("page_size=500") == 500
    assert _paginator_page_size("page_size=100000") == 500
    assert _paginator_page_size("page_size=junk") == 50


@pytest.mark.django_db
def test_token_list_is_cursor_paginated_newest_first(make_user, auth_client, django_assert_num_queries):
    user = make_user("robot", roles.INTEGRATION)
    clients = [auth_client(user) for _ in range(3)]
    client = clients[-1]
    newest_first = list(ApiToken.objects.filter(user=user).order_by("-id").values_list("id", flat=True))

    with django_assert_num_queries(2):  # token lookup, one page
        first = client.get("/api/v1/auth/tokens/?page_size=2")
    assert first.status_code == 200
    body = first.json()
    assert [t["id"] for t in body["results"]] == newest_first[:2]
    assert body["previous"] is None
    assert "cursor=" in body["next"]
    assert "digest" not in body["results"][0]

    second = client.get(body["next"]).json()
    assert [t["id"] for t in second["results"]] == newest_first[2:]
    assert second["next"] is None


@pytest.mark.django_db
def test_token_list_serves_at_most_500_per_page(make_user, auth_client):
    user = make_user("robot", roles.INTEGRATION)
    client = auth_client(user)
    expires = timezone.now() + timedelta(hours=1)
    extra = []
    for _ in range(500):
        _raw, digest = ApiToken.new_key()
        extra.append(ApiToken(user=user, digest=digest, prefix=digest[:8], expires_at=expires))
    with transaction.atomic():
        audited_bulk_create(ApiToken, extra, actor=user, reason="test: many tokens")

    body = client.get("/api/v1/auth/tokens/?page_size=100000").json()

    assert len(body["results"]) == 500
    assert body["next"] is not None
    assert len(client.get(body["next"]).json()["results"]) == 1


@pytest.mark.django_db
def test_token_list_shows_only_the_callers_live_tokens_unless_all(make_user, auth_client):
    user = make_user("robot", roles.INTEGRATION)
    other = make_user("lab1", roles.LAB_STAFF)
    auth_client(other)
    old = auth_client(user)
    client = auth_client(user)
    expired = ApiToken.objects.filter(user=user).order_by("id").first()
    with transaction.atomic():
        audited_update(expired, actor=user, reason="test", expires_at=timezone.now() - timedelta(minutes=1))

    live = client.get("/api/v1/auth/tokens/").json()["results"]
    everything = client.get("/api/v1/auth/tokens/?all=1").json()["results"]

    assert [t["id"] for t in live] == list(
        ApiToken.objects.filter(user=user).exclude(pk=expired.pk).values_list("id", flat=True)
    )
    assert {t["id"] for t in everything} == set(ApiToken.objects.filter(user=user).values_list("id", flat=True))
    assert old.get("/api/v1/me/").status_code == 401


# --- schema ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_openapi_schema_and_swagger_ui_are_served(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["openapi"].startswith("3.")
    for path in ("/api/v1/auth/token/", "/api/v1/auth/tokens/", "/api/v1/me/"):
        assert path in body["paths"], path
    assert "TokenResponse" in body["components"]["schemas"]

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


@pytest.mark.django_db
def test_query_parameters_are_parsed_like_bodies_and_described_in_the_schema(make_user, auth_client, client):
    officer = auth_client(make_user("qc1", roles.QC_OFFICER))

    response = officer.get("/api/v1/qc/specifications/", {"product": "abc"})

    assert response.status_code == 400
    assert response.json() == {"code": "invalid", "message": "product: A valid integer is required.",
                               "fields": {"product": ["A valid integer is required."]}}
    assert officer.get("/api/v1/qc/specifications/", {"product": "1"}).json() == {"results": []}
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for path, name in (("/api/v1/qc/specifications/", "product"), ("/api/v1/shipments/", "status"),
                       ("/api/v1/investigations/", "status")):
        assert name in [p["name"] for p in paths[path]["get"].get("parameters", [])], path


# API views read through selectors (DESIGN.md: thin views), the token views too.
API_VIEW_MODULES = ["batches/api/views.py", "batches/api/documents.py", "batches/shipping/api/views.py",
                    "qc/api/views.py", "qc/api/documents.py", "cmlims/api/views.py", "cmlims/investigations/api.py",
                    "cmlims/documents/api/views.py"]


@pytest.mark.parametrize("module", API_VIEW_MODULES)
def test_api_views_query_through_selectors_not_the_orm(module):
    source = (Path(__file__).resolve().parents[2] / module).read_text()
    assert ".objects." not in source and "get_object_or_404" not in source


@pytest.mark.django_db
def test_an_unknown_investigation_is_404_not_found(make_user, auth_client):
    client = auth_client(make_user("qc1", roles.QC_OFFICER))
    response = client.get("/api/v1/investigations/987654/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "investigation 987654 does not exist"}
