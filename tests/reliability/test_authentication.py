"""Issue 18 item 3: lockout per user name and per address (admin login and token endpoint), audited locks and
their clearing, coalesced failed-login entries, throttles, password validators, deactivated users refused.

The cache is the real one of the run: Redis when REDIS_URL is set, local memory otherwise (each test has its
own key prefix, tests/conftest.py)."""

import datetime as dt
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.cache.backends.base import memcache_key_warnings
from django.core.exceptions import ValidationError
from django.test import Client
from rest_framework.test import APIClient

from cmlims import roles
from cmlims.audit import Action
from cmlims.esign.models import Meaning
from cmlims.esign.services import signing_credentials_verify
from cmlims.exceptions import SigningLocked
from cmlims.logins import failure_count_key, login_failure_counts_sweep, login_lock_expiries_sweep
from cmlims.models import AuditEntry, LoginLock
from cmlims.periodic import beat_schedule
from cmlims.tasks import login_failures_sweep
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
NOON = dt.datetime(2026, 12, 2, 12, 0, 5, tzinfo=dt.UTC)  # early in a 15-minute window
WINDOW = settings.CMLIMS_LOGIN_FAILURE_WINDOW
ROOT = Path(__file__).resolve().parents[2]


def _token(client, username, password, address="10.0.0.1"):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json",
                       REMOTE_ADDR=address)


def _wrong_passwords(client, address, times=1, username="robot"):
    for _ in range(times):
        _token(client, username, "wrong-password", address)


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
    # The lock's end is in its entry (it ends by itself then; an earlier end is an audited clearing).
    until = dt.datetime.fromisoformat(lock[0].changes["locked_until"])
    assert abs(until - lock[0].at - settings.AXES_COOLOFF_TIME) < dt.timedelta(seconds=5)


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
def test_the_sweep_writes_a_closed_windows_count_once_when_the_pair_does_not_fail_again(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    with time_machine.travel(NOON, tick=False):
        _wrong_passwords(api_client, "10.5.1.1", times=4)
        _wrong_passwords(api_client, "10.5.1.2")  # one failure only: its entry says it all
        assert login_failures_sweep() == 0, "the window is still open"
    with time_machine.travel(NOON + WINDOW, tick=False):
        assert login_failures_sweep() == 1
        assert login_failures_sweep() == 0, "a second run finds the count written"
        _wrong_passwords(api_client, "10.5.1.1")
    first, other, swept, next_window = _failed_entries()
    assert swept.changes["event"] == "window_closed" and swept.changes["window_failures"] == 4
    assert swept.object_repr == "robot" and swept.changes["remote_addr"] == "10.5.1.1"
    assert swept.changes["window_start"] == first.changes["window_start"]
    assert "earlier_failures" not in next_window.changes, "the count is written once, by the sweep"
    assert beat_schedule()["login-failures-sweep"]["task"] == login_failures_sweep.name


@pytest.mark.req("SEC-AUTH-COALESCE")
def test_a_count_goes_with_the_pairs_next_entry_and_that_entry_sweeps_the_other_pairs(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    with time_machine.travel(NOON, tick=False):
        _wrong_passwords(api_client, "10.5.2.1", times=3)
        _wrong_passwords(api_client, "10.5.2.2", times=3)
    with time_machine.travel(NOON + WINDOW, tick=False):
        _wrong_passwords(api_client, "10.5.2.1")  # carries its pair's count; sweeps the pair that did not return
        assert login_failures_sweep() == 0, "nothing left for beat"
    entries = _failed_entries()
    assert "earlier_failures" not in entries[0].changes
    carried = [e for e in entries if e.changes.get("earlier_failures")]
    swept = [e for e in entries if e.changes.get("event") == "window_closed"]
    assert [(e.changes["remote_addr"], e.changes["earlier_failures"]) for e in carried] == [("10.5.2.1", 3)]
    assert [(e.changes["remote_addr"], e.changes["window_failures"]) for e in swept] == [("10.5.2.2", 3)]


@pytest.mark.req("SEC-AUTH-COALESCE")
def test_the_sweep_reaches_two_windows_back_when_beat_was_down(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    with time_machine.travel(NOON, tick=False):
        _wrong_passwords(api_client, "10.5.5.1", times=5)
    with time_machine.travel(NOON + 2 * WINDOW + dt.timedelta(minutes=14), tick=False):
        assert login_failures_sweep() == 1
    assert _failed_entries()[-1].changes["window_failures"] == 5


@pytest.mark.req("SEC-AUTH-COALESCE")
def test_refused_attempts_from_a_locked_address_are_swept_as_one_count(make_user):
    make_user("lab1", roles.LAB_STAFF, is_staff=True)
    with time_machine.travel(NOON, tick=False):
        for n in range(LIMIT + 12):
            Client().post("/admin/login/", {"username": f"mallory{n}", "password": "x"}, REMOTE_ADDR="10.5.3.1")
    with time_machine.travel(NOON + WINDOW, tick=False):
        assert login_failure_counts_sweep() == 1
    (swept,) = [e for e in _failed_entries() if e.changes.get("event") == "window_closed"]
    assert swept.changes["refused"] and swept.object_repr == ""
    # The attempt that locked and the 12 after it, counted under the address alone.
    assert swept.changes["window_failures"] == 13


@pytest.mark.req("SEC-AUTH-COALESCE")
@pytest.mark.parametrize("username", ["lab one", "tab\tand\nnewline", "bell\x07", "ü" * 150, "k" * 150])
def test_failed_login_counts_are_kept_under_short_safe_keys_whatever_the_user_name(api_client, username):
    with time_machine.travel(NOON, tick=False):
        for _ in range(2):
            assert _token(api_client, username, "wrong-password", "10.5.4.1").status_code in {400, 401}
        key = failure_count_key(username, "10.5.4.1")
        assert cache.get(key) == 2, "the key the failures were counted under"
    full_key = cache.make_key(key)
    assert list(memcache_key_warnings(full_key)) == [] and len(full_key) < 250
    assert username not in key and "10.5.4.1" not in key


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
    lock = LoginLock.objects.get(subject="username", value="robot")
    assert lock.end == LoginLock.End.CLEARED and entry.changes["locks"] == [lock.pk]
    assert _token(api_client, "robot", PASSWORD, "10.6.0.9").status_code == 200


def _lock_entries(event):
    return [e for e in AuditEntry.objects.filter(object_type="cmlims.login_lock").order_by("sequence")
            if e.changes.get("event") == event]


@pytest.mark.req("SEC-AUTH-LOCK-ENDS", "SEC-AUTH-LOCKOUT")
def test_a_lock_that_runs_out_is_ended_in_the_trail_once_dated_when_it_ended(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    with time_machine.travel(NOON, tick=False):
        for n in range(LIMIT):  # from ten addresses: the user name locks, no address does
            _token(api_client, "robot", "wrong-password", f"10.7.0.{n + 1}")
    (locked,) = _lock_entries("locked_out")
    (lock,) = LoginLock.objects.all()
    assert (lock.subject, lock.value, lock.failures, lock.end) == ("username", "robot", LIMIT, "")
    assert locked.changes["locks"] == [lock.pk] and locked.changes["locked"] == ["username"]
    assert lock.locked_until == NOON + settings.AXES_COOLOFF_TIME
    with time_machine.travel(lock.locked_until - dt.timedelta(seconds=1), tick=False):
        assert login_lock_expiries_sweep() == 0, "still locked"
    late = lock.locked_until + dt.timedelta(minutes=7)  # beat was down for a while
    with time_machine.travel(late, tick=False):
        assert login_failures_sweep() == 1
        assert login_lock_expiries_sweep() == 0, "a second sweep finds nothing to end"
    (expired,) = _lock_entries("lock_expired")
    assert expired.changes["login_lock"] == ["locked", "expired"] and expired.changes["lock"] == lock.pk
    assert dt.datetime.fromisoformat(expired.changes["ended_at"]) == lock.locked_until, "dated when it ended"
    assert expired.username == "system" and expired.object_repr == "robot"
    lock.refresh_from_db()
    assert lock.end == LoginLock.End.EXPIRED and lock.ended_at == lock.locked_until


@pytest.mark.req("SEC-AUTH-LOCK-ENDS", "SEC-AUTH-UNLOCK")
@time_machine.travel(NOON, tick=True)
def test_a_lock_set_again_after_it_was_cleared_is_a_new_lock_with_its_own_entry(make_user, api_client, auth_client):
    make_user("robot", roles.INTEGRATION)
    qc = auth_client(make_user("qc1", roles.QC_OFFICER))
    for round_ in range(2):
        for _ in range(LIMIT):  # one address, one user name: both lock
            _token(api_client, "robot", "wrong-password", "10.7.1.1")
        assert qc.post("/api/v1/auth/locks/clear/", {"username": "robot", "ip_address": "10.7.1.1",
                                                      "reason": f"round {round_}"}, format="json").status_code == 200
    locks = list(LoginLock.objects.order_by("pk"))
    assert [(lock.subject, lock.end) for lock in locks] == [("username", "cleared"), ("ip_address", "cleared")] * 2
    locked, cleared = _lock_entries("locked_out"), _lock_entries("lock_cleared")
    assert [e.changes["locks"] for e in locked] == [[locks[0].pk, locks[1].pk], [locks[2].pk, locks[3].pk]]
    assert [e.changes["locks"] for e in cleared] == [[locks[0].pk, locks[1].pk], [locks[2].pk, locks[3].pk]]
    assert [e.reason for e in cleared] == ["round 0", "round 1"]
    assert login_lock_expiries_sweep() == 0, "a cleared lock does not run out as well"


@pytest.mark.req("SEC-AUTH-LOCK-ENDS")
def test_a_lock_that_ran_out_unswept_is_ended_before_the_same_subject_locks_again(make_user, api_client):
    with time_machine.travel(NOON, tick=False):
        for n in range(LIMIT):
            _token(api_client, f"guess{n}", "wrong-password", "10.7.2.1")
    (first,) = LoginLock.objects.all()
    assert (first.subject, first.value) == ("ip_address", "10.7.2.1")
    cache.clear()  # axes' counts ran out with the lock (Redis keeps its own clock, not the test's)
    with time_machine.travel(first.locked_until + dt.timedelta(minutes=1), tick=False):
        for n in range(LIMIT):  # no sweep ran in between
            _token(api_client, f"again{n}", "wrong-password", "10.7.2.1")
    first.refresh_from_db()
    second = LoginLock.objects.open().get()
    assert first.end == LoginLock.End.EXPIRED and second.pk != first.pk
    expired, relocked = [e for e in AuditEntry.objects.filter(object_type="cmlims.login_lock").order_by("sequence")
                         if e.changes.get("event") in {"lock_expired", "locked_out"}][1:]
    assert expired.changes["lock"] == first.pk and relocked.changes["locks"] == [second.pk], "the end comes first"


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


@pytest.mark.req("SEC-AUTH-IDLE")
def test_an_admin_session_ends_after_the_idle_time_and_lives_while_used(make_user, client, settings):
    settings.CMLIMS_SESSION_IDLE = dt.timedelta(minutes=30)
    user = make_user("idle-lab", roles.LAB_STAFF, is_staff=True)
    with time_machine.travel(dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        client.force_login(user)
        assert client.get("/admin/").status_code == 200
        clock.shift(dt.timedelta(minutes=29))
        assert client.get("/admin/").status_code == 200  # used within the idle time: the session lives on
        clock.shift(dt.timedelta(minutes=29))
        assert client.get("/admin/").status_code == 200  # 58 min after login, 29 after the last request
        clock.shift(dt.timedelta(minutes=31))
        response = client.get("/admin/")
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    logout = AuditEntry.objects.filter(action=Action.LOGGED_OUT, user=user)
    assert logout.count() == 1, "the idle logout is audited"


@pytest.mark.req("SEC-AUTH-IDLE")
@pytest.mark.parametrize("module", ["config.settings.local", "config.settings.production"])
def test_the_idle_time_is_30_minutes_unless_set_in_the_demo_and_in_production(tmp_path, module):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CMLIMS_", "SECRET_KEY"))}
    # Production refuses to start without its secrets: throwaways made for this run, never stored.
    env.update(DJANGO_SETTINGS_MODULE=module, CMLIMS_DATA_DIR=str(tmp_path), SECRET_KEY=secrets.token_urlsafe(50),
               CMLIMS_AUDIT_KEY=secrets.token_urlsafe(40), ALLOWED_HOSTS="lims.example.org",
               REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    code = "from django.conf import settings; print(settings.CMLIMS_SESSION_IDLE.total_seconds())"
    shown = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,  # noqa: S603
                           capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[-1] == "1800.0"


@pytest.mark.req("SEC-AUTH-UNLOCK", "SEC-AUTH-LOCK-ENDS")
@time_machine.travel(NOON, tick=True)
def test_a_qc_officer_sees_the_locks_in_the_admin_and_clears_one_there_with_a_reason(make_user, api_client):
    make_user("robot", roles.INTEGRATION)
    for n in range(LIMIT):
        _token(api_client, "robot", "wrong-password", f"10.8.0.{n + 1}")
    lock = LoginLock.objects.get()
    lab, qc = Client(), Client()
    lab.force_login(make_user("lab1", roles.LAB_STAFF, is_staff=True))
    qc.force_login(make_user("qc1", roles.QC_OFFICER, is_staff=True))
    page = f"/admin/cmlims/loginlock/{lock.pk}/clear/"
    assert lab.get("/admin/cmlims/loginlock/").status_code == 403
    assert lab.post(page, {"reason": "x"}).status_code == 403
    listing = qc.get("/admin/cmlims/loginlock/")
    assert listing.status_code == 200 and page in listing.content.decode()
    blank = qc.post(page, {"reason": ""})
    assert blank.status_code == 200 and blank.context["form"].errors["reason"], "a reason is required"
    assert LoginLock.objects.open().count() == 1, "nothing cleared without a reason"
    done = qc.post(page, {"reason": "integration's password rotated"})
    assert done.status_code == 302
    lock.refresh_from_db()
    assert lock.end == LoginLock.End.CLEARED
    (entry,) = [e for e in AuditEntry.objects.filter(object_type="cmlims.login_lock")
                if e.changes.get("event") == "lock_cleared"]
    assert entry.user.username == "qc1" and entry.reason == "integration's password rotated"
    assert entry.changes["locks"] == [lock.pk] and entry.changes["username"] == "robot"
    assert page not in qc.get("/admin/cmlims/loginlock/").content.decode(), "an ended lock offers no clearing"
    assert _token(api_client, "robot", PASSWORD, "10.8.0.1").status_code == 200
