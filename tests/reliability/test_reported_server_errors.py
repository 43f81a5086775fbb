"""The server errors an outside fuzzer found (issue 18): each input now answers the one right 2xx/4xx."""

import sqlite3

import pytest
from django.db import OperationalError

from cmlims import roles
from cmlims.api.exceptions import is_database_unavailable

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(make_user, auth_client):
    return auth_client(make_user("fuzz-lab", roles.LAB_STAFF))


@pytest.fixture
def coordinator(make_user, auth_client):
    return auth_client(make_user("fuzz-ship", roles.SHIPPING_COORDINATOR))


@pytest.mark.req("README-API-ERRORS")
@pytest.mark.parametrize("path", ["/api/v1/consignees/", "/api/v1/shipments/"])
def test_options_describes_what_post_accepts(coordinator, lab, path):
    response = coordinator.options(path)
    assert response.status_code == 200, response.content
    assert "POST" in response.json()["actions"]  # DRF's metadata from the input serializer
    # ... to whoever may post there: lab staff read shipping but make none of it.
    assert "actions" not in lab.options(path).json()


@pytest.mark.req("README-API-ERRORS")
@pytest.mark.parametrize(("query", "field", "problem"), [
    ("product=99999999999999999999", "product", "less than or equal to"),
    ("product=0", "product", "greater than or equal to"),
    ("created_before=0001-01-01T00:00:00%2B01:00", "created_before", "out of range once converted to UTC"),
    ("created_after=0001-01-01T00:30:00%2B01:00", "created_after", "out of range once converted to UTC"),
])
def test_lot_list_filters_out_of_range_are_400_naming_the_field(lab, query, field, problem):
    response = lab.get(f"/api/v1/lots/?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and problem in body["fields"][field][0]


@pytest.mark.req("README-API-ERRORS")
@pytest.mark.parametrize("path", ["/api/v1/harvests/abc/void/", "/api/v1/passages/abc/verify/",
                                  "/api/v1/freeze-drying-phases/abc/void/", "/api/v1/products/abc/verify/"])
def test_a_non_numeric_key_is_404(lab, path):
    response = lab.post(path, {"reason": "typo"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found", response.content


@pytest.mark.req("README-API-ERRORS")
def test_with_debug_on_an_unknown_api_route_is_json_not_django_s_page(lab, settings):
    settings.DEBUG = True  # the demo's setting
    response = lab.get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "message": "No route for /api/v1/no-such-thing/."}


@pytest.mark.req("README-API-ERRORS")
def test_a_bug_under_api_answers_a_short_json_500_and_logs_the_traceback(caplog):
    from django.test import RequestFactory

    from cmlims.middleware import ApiJsonErrorsMiddleware

    middleware = ApiJsonErrorsMiddleware(lambda request: None)
    request = RequestFactory().get("/api/v1/lots/")
    try:
        raise RuntimeError("a bug")
    except RuntimeError as exc:
        response = middleware.process_exception(request, exc)
    assert response.status_code == 500 and len(response.content) < 200
    assert response.content == b'{"code": "server_error", "message": "Internal error; it has been logged."}'
    assert "a bug" in caplog.text and "Traceback" in caplog.text
    # Outside /api/ Django's own handling stays (the admin shows its page).
    assert middleware.process_exception(RequestFactory().get("/admin/"), RuntimeError("x")) is None


def _as_django(cause: sqlite3.Error) -> OperationalError:
    error = OperationalError(str(cause))  # as django.db.utils wraps a driver's error
    error.__cause__ = cause
    return error


@pytest.mark.req("README-API-ERRORS", "REL-FAULT-DB-RESTART")
def test_a_statement_sqlite_refuses_is_a_defect_not_an_outage(tmp_path):
    """SQLite (the demo) raises OperationalError for a statement it cannot parse as for a file it cannot open:
    only the second is "database unavailable, retry" (503); the first is our defect, a logged 500 (the audit
    trail's type filter once answered the demo 503 for its SQL)."""
    with pytest.raises(sqlite3.OperationalError) as bad_sql:
        sqlite3.connect(":memory:").execute("WITH RECURSIVE skip(v) AS ((SELECT 1) UNION ALL SELECT 1) SELECT 1")
    assert "syntax error" in str(bad_sql.value)
    assert not is_database_unavailable(_as_django(bad_sql.value))
    with pytest.raises(sqlite3.OperationalError) as unreachable:
        sqlite3.connect(tmp_path / "no-such-folder" / "db.sqlite3")
    assert is_database_unavailable(_as_django(unreachable.value))
