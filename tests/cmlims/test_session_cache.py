"""A browser request's fixed reads (issue 14): the session from the shared cache (REDIS_URL: ``cached_db``), kept
in the database too so a cache flush loses no session; the user's permissions, its own and its groups', in one
query kept on the user for the request."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.backends.cached_db import SessionStore
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cmlims import roles
from tests.support.queries import CACHED_SESSIONS

pytestmark = pytest.mark.django_db

START = "/admin/"


def _reads(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.status_code  # not sent to the login page
    return [q["sql"] for q in ctx.captured_queries]


def _flush_cache(settings) -> None:
    """An empty cache, as after FLUSHDB or a Redis restart: a new key prefix (the broker's keys in the same
    Redis database stay untouched)."""
    settings.CACHES = {alias: {**config, "KEY_PREFIX": f"flushed{uuid.uuid4().hex[:12]}"}
                       for alias, config in settings.CACHES.items()}


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_an_admin_request_reads_no_session_row_and_the_permissions_once(require_redis, settings, client,
                                                                        make_user):
    assert settings.SESSION_ENGINE == CACHED_SESSIONS  # what REDIS_URL configures (config/settings/base.py)
    user = make_user("lab-cached", roles.LAB_STAFF, is_staff=True)
    client.force_login(user)
    _reads(client, START)
    for url in (START, "/admin/batches/cmlot/", "/admin/batches/vial/"):
        reads = _reads(client, url)
        assert not [sql for sql in reads if "django_session" in sql], url
        assert len([sql for sql in reads if 'FROM "auth_permission"' in sql]) == 1, url


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_a_session_survives_a_cache_flush(require_redis, settings, client, make_user):
    user = make_user("lab-flushed", roles.LAB_STAFF, is_staff=True)
    client.force_login(user)
    _reads(client, START)
    _flush_cache(settings)
    reads = _reads(client, START)  # still logged in: the row is read back from the database ...
    assert len([sql for sql in reads if "django_session" in sql]) == 1
    assert not [sql for sql in _reads(client, START) if "django_session" in sql]  # ... and cached again


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_a_logout_ends_the_session_in_the_cache_and_the_database(require_redis, client, make_user):
    user = make_user("lab-out", roles.LAB_STAFF, is_staff=True)
    client.force_login(user)
    key = client.session.session_key
    _reads(client, START)
    assert client.post("/admin/logout/").status_code == 200
    assert not SessionStore(session_key=key).exists(key)  # neither in the cache nor in the database
    client.cookies["sessionid"] = key  # the old cookie again: nobody
    response = client.get(START)
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_permissions_are_one_query_and_the_same_as_djangos(make_user, django_assert_num_queries):
    user = make_user("lab-perms", roles.LAB_STAFF, is_staff=True)
    own = Permission.objects.get(content_type__app_label="auth", codename="view_group")
    user.user_permissions.add(own)
    users = get_user_model().objects
    fresh = users.get(pk=user.pk)
    with django_assert_num_queries(1):
        assert fresh.has_perm("auth.view_group") and fresh.has_perm("batches.view_cmlot")
        assert not fresh.has_perm("auth.delete_user") and fresh.has_module_perms("batches")
        every = fresh.get_all_permissions()
        mine, theirs = fresh.get_user_permissions(), fresh.get_group_permissions()
    django = ModelBackend()
    stock = users.get(pk=user.pk)
    assert mine == django.get_user_permissions(stock) == {"auth.view_group"}
    assert theirs == django.get_group_permissions(stock) and "batches.view_cmlot" in theirs
    assert every == django.get_all_permissions(stock) == mine | theirs
    lab = Group.objects.get(name=roles.LAB_STAFF)
    assert len(theirs) == lab.permissions.count()


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_the_superuser_holds_every_permission_as_in_django(make_user):
    root = make_user("root-perms", is_staff=True, is_superuser=True)
    fresh = get_user_model().objects.get(pk=root.pk)
    assert fresh.get_all_permissions() == ModelBackend().get_all_permissions(
        get_user_model().objects.get(pk=root.pk)) == {
        f"{app}.{codename}" for app, codename in Permission.objects.values_list("content_type__app_label", "codename")}
