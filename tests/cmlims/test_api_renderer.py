"""The API's orjson renderer writes DRF's bytes; the request's user comes with its roles in one query."""

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal

import pytest
from rest_framework.renderers import JSONRenderer

from cmlims import roles
from cmlims.api.renderers import OrjsonRenderer
from tests.support.queries import session_request_reads

LONDON = zoneinfo.ZoneInfo("Europe/London")
PAYLOADS = [
    {"z": 1, "a": [1, 2.5, None, True, False], "nested": {"é": "ünïcode ✓", "empty": {}}},  # key order kept
    {"utc": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
     "micro": dt.datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=dt.UTC),
     "london_winter": dt.datetime(2026, 1, 2, 3, 4, tzinfo=LONDON),
     "london_summer": dt.datetime(2026, 7, 2, 3, 4, tzinfo=LONDON),
     "naive": dt.datetime(2026, 1, 2, 3, 4), "date": dt.date(2026, 1, 2), "time": dt.time(3, 4, 5, 6)},
    {"decimal": Decimal("400.00"), "big": Decimal("1E+20"), "negative": Decimal("-0.5")},
    {"tiny": Decimal("0.00001")},  # float spelled 1e-05 by json: DRF's renderer writes it
    {"separators": "line\u2028paragraph\u2029end", "uuid": uuid.UUID(int=7), "tuple": (1, "a"), "set": {3}},
    {1: "int key", None: "null key"},
    [2**70],  # beyond 64 bits: DRF's renderer writes it
    "just a string",
]


@pytest.mark.req("FEAT-PERF-API")
@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_orjson_renderer_writes_the_bytes_of_drfs_renderer(payload):
    assert OrjsonRenderer().render(payload) == JSONRenderer().render(payload)


@pytest.mark.req("FEAT-PERF-API")
def test_orjson_renderer_indents_and_refuses_what_drf_does():
    payload = {"a": [1, {"b": Decimal("2.50")}]}
    indented = "application/json; indent=4"
    assert OrjsonRenderer().render(payload, indented) == JSONRenderer().render(payload, indented)
    assert OrjsonRenderer().render(None) == b""
    with pytest.raises(ValueError):  # NaN is not JSON: refused as DRF refuses it (STRICT_JSON)
        OrjsonRenderer().render({"nan": Decimal("NaN")})


@pytest.mark.django_db
@pytest.mark.req("FEAT-PERF-API")
def test_session_user_comes_with_its_roles_in_one_query(make_user, client, django_assert_num_queries):
    user = make_user("lab1", roles.LAB_STAFF)
    roles_changed = make_user("qc1", roles.QC_OFFICER)
    client.force_login(user)
    # The session (none when cached: REDIS_URL), then the user with its roles; the page reads none.
    with django_assert_num_queries(session_request_reads()):
        response = client.get("/api/v1/me/")
    assert response.status_code == 200 and response.json()["roles"] == [roles.LAB_STAFF]
    roles_changed.groups.clear()  # a role taken away counts from the next request
    client.force_login(roles_changed)
    assert client.get("/api/v1/me/").json()["roles"] == []
