"""Issue 18 item 3: lockout per user name and per address (admin login and token endpoint), audited locks and
their clearing, coalesced failed-login entries, throttles, password validators, deactivated users refused.

The cache is the real one of the run: Redis when REDIS_URL is set, local memory otherwise (each test has its
own key prefix, tests/conftest.py)."""

import datetime as dt

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from cmlims import roles
from cmlims.audit import Action
from cmlims.esign.models import Meaning
from cmlims.esign.services import signing_credentials_verify
from cmlims.exceptions import SigningLocked
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
NOON = dt.datetime(2026, 12, 2, 12, 0, 5, tzinfo=dt.UTC)  # early in a 15-minute window


def _token(client, username, password, address="10.0.0.1"):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json",
                       REMOTE_ADDR=address)


def _failed_entries():
    return list(AuditEntry.objects.filter(action=Action.LOGIN_FAILED).order_by("sequence"))


@pytest.mark.req("SEC-AUTH-LOCKOUT")
@time_machine.travel(NOON, tick=True)
def test_the_admin_login_locks_a_user_name_whatever_the_address_and_the_lock_is_audited(make_user):
    make_user("lab1", roles.LAB_STAFF, is_staff=True)
    for n in range(LIMIT):
        response = Client().post("/admin/login/", {"username": "lab1", "password": "wrong-password"},
                                 REMOTE_ADDR=f"10.1.0.{n + 1}")
    assert response.status_code == 423  # the LIMIT-th failure locks
    right = Client().post("/admin/login/", {"username": "lab1", "password": PASSWORD}, REMOTE_ADDR="10.2.0.1")
    assert right.status_code == 423, "the right password is refused while the user name is locked"
    lock = [e for e in _failed_entries() if e.changes.get("event") == "locked_out"]
    assert len(lock) == 1 and lock[0].object_repr == "lab1" and lock[0].changes["failure_limit"] == LIMIT


@pytest.mark.req("SEC-AUTH-LOCKOUT")
@time_machine.travel(NOON, tick=True)
def test_the_token_endpoint_locks_an_address_trying_many_user_names(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    for n in range(LIMIT):
        assert _token(api_client, f"guess{n}", "wrong-password", "10.3.0.1").status_code in {401, 423}
    locked = _token(api_client, "robot", PASSWORD, "10.3.0.1")
    assert locked.status_code == 423
    body = locked.json()
    assert body["code"] == "login_locked" and body["retry_after"] == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert _token(api_client, "robot", PASSWORD, "10.3.0.2").status_code == 200, "another address is not locked"


@pytest.mark.req("SEC-AUTH-COALESCE", via="browser")
@time_machine.travel(NOON, tick=True)
def test_a_flood_of_failed_logins_adds_a_bounded_number_of_entries_and_no_write_per_attempt(
        make_user, django_assert_num_queries):
    make_user("lab1", roles.LAB_STAFF, is_staff=True)
    before = AuditEntry.objects.count()

    def attempt(username="lab1"):
        return Client().post("/admin/login/", {"username": username, "password": "wrong-password"},
                             REMOTE_ADDR="10.4.0.1").status_code

    for _ in range(LIMIT + 1):
        attempt()
    with django_assert_num_queries(0):  # refused while locked: counted in the cache, nothing written or read
        assert {attempt() for _ in range(30)} == {423}
    for n in range(30):  # invented user names from the locked address: still one entry for the window
        attempt(f"mallory{n}")
    entries = _failed_entries()
    assert AuditEntry.objects.count() - before == len(entries) == 3
    first, lock, refused = entries
    assert first.changes["attempted_username"] == "lab1" and "coalesced" in first.changes
    assert lock.changes["event"] == "locked_out" and lock.changes["failures"] == LIMIT
    assert refused.changes["refused"] and refused.changes["remote_addr"] == "10.4.0.1"


@pytest.mark.req("SEC-AUTH-COALESCE")
def test_the_count_of_a_window_is_written_with_the_next_windows_entry(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    with time_machine.travel(NOON, tick=False):
        for _ in range(3):
            _token(api_client, "robot", "wrong-password", "10.5.0.1")
    with time_machine.travel(NOON + settings.CMLIMS_LOGIN_FAILURE_WINDOW, tick=False):
        _token(api_client, "robot", "wrong-password", "10.5.0.1")
    first, second = _failed_entries()
    assert "earlier_failures" not in first.changes and second.changes["earlier_failures"] == 3


@pytest.mark.req("SEC-AUTH-UNLOCK")
@time_machine.travel(NOON, tick=True)
def test_a_qc_officer_clears_a_lock_with_a_reason_and_lab_staff_may_not(make_user, api_client, auth_client):
    make_user("robot", roles.INTEGRATION)
    for _ in range(LIMIT):
        _token(api_client, "robot", "wrong-password", "10.6.0.1")
    assert _token(api_client, "robot", PASSWORD, "10.6.0.9").status_code == 423
    lab = auth_client(make_user("lab1", roles.LAB_STAFF))
    qc = auth_client(make_user("qc1", roles.QC_OFFICER))
    url = "/api/v1/auth/locks/clear/"
    assert lab.post(url, {"username": "robot", "reason": "x"}, format="json").status_code == 403
    no_reason = qc.post(url, {"username": "robot"}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["fields"]
    assert qc.post(url, {"reason": "nothing named"}, format="json").status_code == 400
    cleared = qc.post(url, {"username": "robot", "reason": "integration restarted with a wrong password"},
                      format="json")
    assert cleared.status_code == 200 and cleared.json()["cleared"] >= 1
    entry = AuditEntry.objects.filter(action=Action.CHANGED, object_type="cmlims.login_lock").get()
    assert entry.user == qc.user and entry.object_repr == "robot" and entry.reason
    assert _token(api_client, "robot", PASSWORD, "10.6.0.9").status_code == 200


@pytest.mark.req("SEC-AUTH-THROTTLE")
def test_the_token_endpoint_is_throttled_per_address(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"].split("/")[0])
    with time_machine.travel(NOON, tick=False):
        for _ in range(allowed):
            assert _token(api_client, "robot", PASSWORD, "10.7.0.1").status_code == 200
        throttled = _token(api_client, "robot", PASSWORD, "10.7.0.1")
        assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"
        assert throttled.json()["retry_after"] > 0
        assert _token(api_client, "robot", PASSWORD, "10.7.0.2").status_code == 200


@pytest.mark.req("SEC-AUTH-THROTTLE")
@pytest.mark.parametrize(("scope", "url", "role"), [
    ("signature", "/api/v1/lots/CM-NONE/release/", roles.QC_OFFICER),
    ("upload", "/api/v1/qc/results/import/", roles.LAB_STAFF),
])
def test_signatures_and_uploads_are_throttled_per_user_before_the_body_is_checked(
        make_user, auth_client, scope, url, role):
    client = auth_client(make_user("user1", role))
    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].split("/")[0])
    with time_machine.travel(NOON, tick=False):
        for _ in range(allowed):
            assert client.post(url, {}, format="multipart").status_code in {400, 404}
        throttled = client.post(url, {}, format="multipart")
        assert throttled.status_code == 429 and throttled.json()["code"] == "throttled"


@pytest.mark.req("SEC-AUTH-SIGN-NAME")
def test_a_wrong_user_name_in_a_signature_counts_towards_the_signing_lock(make_user):
    qc = make_user("qc1", roles.QC_OFFICER)
    for _ in range(settings.CMLIMS_SIGNING_MAX_FAILURES - 1):
        with pytest.raises(Exception) as refused:
            signing_credentials_verify(signer=qc, username="qc2", password=PASSWORD, meaning=Meaning.RESULT_APPROVED)
        assert refused.value.extra["fields"] == {"username": [refused.value.extra["fields"]["username"][0]]}
    with pytest.raises(SigningLocked):
        signing_credentials_verify(signer=qc, username="qc2", password=PASSWORD, meaning=Meaning.RESULT_APPROVED)
    with pytest.raises(SigningLocked):  # the right components are refused too while locked
        signing_credentials_verify(signer=qc, username="qc1", password=PASSWORD, meaning=Meaning.RESULT_APPROVED)


@pytest.mark.req("SEC-AUTH-PASSWORDS")
@pytest.mark.parametrize("password", ["short1", "password123", "8412093375"])
def test_weak_passwords_are_refused(make_user, password):
    user = make_user("lab1", roles.LAB_STAFF)
    with pytest.raises(ValidationError):
        validate_password(password, user)
    validate_password("violet-kiln-harbour-57", user)


@pytest.mark.req("SEC-AUTH-PASSWORDS", via="browser")
def test_the_admin_refuses_a_weak_password_for_a_new_user(make_user):
    admin = make_user("admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    response = client.post("/admin/auth/user/add/", {"username": "newlab", "usable_password": "true",
                                                     "password1": "12345678", "password2": "12345678"})
    assert response.status_code == 200  # the form again
    assert not type(admin).objects.filter(username="newlab").exists()


@pytest.mark.req("SEC-AUTH-INACTIVE")
def test_a_deactivated_user_is_refused_at_once_token_and_session(make_user, auth_client):
    user = make_user("lab1", roles.LAB_STAFF, is_staff=True)
    api = auth_client(user)
    browser = Client()
    browser.force_login(user)
    assert api.get("/api/v1/me/").status_code == 200
    assert browser.get("/admin/").status_code == 200
    user.is_active = False
    user.save()
    assert api.get("/api/v1/me/").status_code == 401
    assert browser.get("/admin/").status_code == 302  # to the login page
    assert APIClient().post("/api/v1/auth/token/", {"username": "lab1", "password": PASSWORD},
                            format="json").status_code == 401
