"""Users, groups, permissions, tokens and logins are in the audit trail: who changed whom, and what."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from cmlims import roles
from cmlims.audit import Action
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(make_user):
    return make_user("root", is_superuser=True, is_staff=True)


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    return client


def last(action: str, **filters) -> AuditEntry:
    return AuditEntry.objects.filter(action=action, **filters).order_by("-sequence").first()


def test_admin_login_and_logout_are_recorded(make_user):
    user = make_user("lab1", roles.LAB_STAFF, is_staff=True)
    client = Client()
    response = client.post("/admin/login/", {"username": "lab1", "password": PASSWORD, "next": "/admin/"},
                            REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    entry = last(Action.LOGGED_IN)
    assert (entry.user, entry.username, entry.object_id) == (user, "lab1", str(user.pk))
    assert entry.changes["remote_addr"] == "10.1.2.3"
    client.post("/admin/logout/")
    assert last(Action.LOGGED_OUT).user == user


@pytest.mark.req("P11-11.300", via="browser")
def test_a_failed_admin_login_records_the_attempted_name_with_no_actor(make_user):
    user = make_user("lab1", roles.LAB_STAFF, is_staff=True)
    response = Client().post("/admin/login/", {"username": "lab1", "password": "wrong-password"},
                             REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 200  # the form again, with its error
    entry = last(Action.LOGIN_FAILED)
    assert entry.user is None and entry.username == "anonymous"
    assert (entry.object_type, entry.object_id, entry.object_repr) == ("auth.user", str(user.pk), "lab1")
    assert {k: entry.changes[k] for k in ("attempted_username", "account_exists", "remote_addr", "path")} == {
        "attempted_username": "lab1", "account_exists": True, "remote_addr": "10.9.9.9", "path": "/admin/login/"}
    assert "wrong-password" not in str(entry.changes)


def test_a_failed_login_for_an_unknown_name_is_recorded_too():
    Client().post("/admin/login/", {"username": "mallory", "password": "guess-guess"})
    entry = last(Action.LOGIN_FAILED)
    assert entry.object_id == "" and entry.object_repr == "mallory"
    assert entry.changes["account_exists"] is False


def test_the_token_endpoint_records_issue_and_failure_and_the_failure_survives_the_error(make_user, api_client):
    user = make_user("robot", roles.INTEGRATION)
    bad = api_client.post("/api/v1/auth/token/", {"username": "robot", "password": "nope-nope-nope"}, format="json")
    assert bad.status_code == 401
    failed = last(Action.LOGIN_FAILED)
    assert failed is not None and failed.object_repr == "robot" and failed.changes["path"] == "/api/v1/auth/token/"
    good = api_client.post("/api/v1/auth/token/", {"username": "robot", "password": PASSWORD}, format="json")
    assert good.status_code == 200
    issued = last(Action.TOKEN_ISSUED)
    assert issued.user == user and issued.object_type == "cmlims.apitoken"
    assert "digest" not in issued.changes  # only the hash of the key is stored, and not even it is logged
    assert good.json()["token"] not in str(issued.changes)


def test_token_revocation_is_recorded(make_user, auth_client):
    user = make_user("robot", roles.INTEGRATION)
    client = auth_client(user)
    token_id = client.get("/api/v1/auth/tokens/").json()["results"][0]["id"]
    assert client.post(f"/api/v1/auth/tokens/{token_id}/revoke/", {"reason": "rotating keys"},
                       format="json").status_code == 200
    entry = last(Action.TOKEN_REVOKED)
    assert entry.user == user and entry.reason == "rotating keys" and "revoked_at" in entry.changes


@pytest.mark.req("RULE-8", "P11-11.10e")
def test_admin_creating_and_changing_a_user_is_recorded_with_who_changed_whom(admin_client, admin_user):
    response = admin_client.post("/admin/auth/user/add/", {
        "username": "newbie", "password1": "Str0ng-enough-pass", "password2": "Str0ng-enough-pass",
        "usable_password": "true",
    })
    assert response.status_code == 302, response.content
    created = last(Action.CREATED, object_type="auth.user")
    assert created.user == admin_user and created.object_repr == "newbie"
    assert created.changes["password"] == [None, "(set)"]
    assert "pbkdf2" not in str(created.changes) and "md5" not in str(created.changes)

    from django.contrib.auth import get_user_model

    newbie = get_user_model().objects.get(username="newbie")
    lab = Group.objects.get(name=roles.LAB_STAFF)
    response = admin_client.post(f"/admin/auth/user/{newbie.pk}/change/", {
        "username": "newbie", "first_name": "New", "last_name": "Bie", "email": "", "is_active": "on",
        "is_staff": "on", "groups": [lab.pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    })
    assert response.status_code == 302, response.content
    changed = last(Action.CHANGED, object_type="auth.user", object_id=str(newbie.pk))
    assert changed.user == admin_user
    assert changed.changes["is_staff"] == [False, True] and changed.changes["first_name"] == ["", "New"]
    membership = last(Action.PERMISSIONS_CHANGED, object_id=str(newbie.pk))
    assert membership.user == admin_user and membership.changes == {"groups": {"added": [roles.LAB_STAFF]}}


def test_password_changes_are_recorded_without_the_hash(make_user):
    user = make_user("lab1")
    user.set_password("An0ther-long-password")
    user.save()
    entry = last(Action.CHANGED, object_id=str(user.pk))
    assert entry.changes == {"password": ["(hidden)", "(changed)"]}


@pytest.mark.req("RULE-8")
def test_memberships_and_permissions_both_directions_and_clear(make_user):
    user = make_user("lab1")
    group = Group.objects.create(name="Reviewers")
    perm = Permission.objects.get(codename="view_auditentry")

    group.user_set.add(user)  # reverse side: recorded on the user
    assert last(Action.PERMISSIONS_CHANGED, object_id=str(user.pk)).changes == {"groups": {"added": ["Reviewers"]}}
    perm.group_set.add(group)  # reverse side of Group.permissions: recorded on the group
    on_group = last(Action.PERMISSIONS_CHANGED, object_type="auth.group", object_id=str(group.pk))
    assert on_group.changes == {"permissions": {"added": ["cmlims.view_auditentry"]}}
    user.user_permissions.add(perm)
    assert last(Action.PERMISSIONS_CHANGED, object_id=str(user.pk)).changes == {
        "user_permissions": {"added": ["cmlims.view_auditentry"]}}
    user.groups.clear()
    assert last(Action.PERMISSIONS_CHANGED, object_id=str(user.pk)).changes == {"groups": {"removed": ["Reviewers"]}}
    group.permissions.clear()
    on_group = last(Action.PERMISSIONS_CHANGED, object_type="auth.group", object_id=str(group.pk))
    assert on_group.changes == {"permissions": {"removed": ["cmlims.view_auditentry"]}}
    assert audit_chain_verify().ok


@pytest.mark.req("README-NO-DELETE")
def test_groups_cannot_be_deleted_in_the_admin(make_user, admin_client):
    """A group carries permissions and members (the role model): it is changed, never deleted, even by the
    superuser (no hard deletes); the refusal writes nothing."""
    user = make_user("lab1")
    group = Group.objects.create(name="Temporary")
    group.user_set.add(user)
    before = AuditEntry.objects.count()
    assert admin_client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Group.objects.filter(pk=group.pk).exists() and AuditEntry.objects.count() == before
    assert "delete_selected" not in admin_client.get("/admin/auth/group/").content.decode()


@pytest.mark.req("README-NO-DELETE")
def test_users_cannot_be_deleted_in_the_admin(admin_client, make_user):
    user = make_user("lab1")
    assert admin_client.get(f"/admin/auth/user/{user.pk}/delete/").status_code == 403
    changelist = admin_client.get("/admin/auth/user/")
    assert "delete_selected" not in changelist.content.decode()


def test_a_users_admin_history_shows_the_trail(admin_client, make_user):
    user = make_user("lab1")
    user.first_name = "Renamed"
    user.save()
    page = admin_client.get(f"/admin/auth/user/{user.pk}/history/").content.decode()
    assert "Renamed" in page and "first name" in page


@pytest.mark.req("P11-11.10e")
def test_entries_carry_the_request_id_of_the_request(make_user, admin_client):
    """X-Request-ID (kept by the middleware in cmlims.context) reaches every entry the request writes."""
    user = make_user("lab1")
    response = admin_client.post(f"/admin/auth/user/{user.pk}/change/", {
        "username": "lab1", "first_name": "Via", "last_name": "Request", "email": "", "is_active": "on",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00",
    }, HTTP_X_REQUEST_ID="req-audit-42")
    assert response.status_code == 302 and response["X-Request-ID"] == "req-audit-42"
    entry = last(Action.CHANGED, object_id=str(user.pk))
    assert entry.request_id == "req-audit-42" and entry.username == "root"


def test_the_administrator_revokes_a_token_in_the_admin_and_it_is_recorded(make_user, auth_client, admin_client,
                                                                          admin_user):
    from cmlims.models import ApiToken

    robot = make_user("robot", roles.INTEGRATION)
    auth_client(robot)
    token = ApiToken.objects.get(user=robot)
    response = admin_client.post("/admin/cmlims/apitoken/",
                                 {"action": "revoke_selected", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = last(Action.TOKEN_REVOKED, object_id=str(token.pk))
    assert entry.user == admin_user and entry.reason == "revoked in the admin"
    assert admin_client.get(f"/admin/cmlims/apitoken/{token.pk}/delete/").status_code == 403
