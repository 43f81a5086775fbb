"""The lot API: payload, filters, transitions (409 with conditions), traceability, constant query counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.models import CMLot, LotStatus
from cmlims.audit import audited_update
from tests.support.builders import (
    freeze_dry,
    lot_at,
    make_bank,
    make_conditioning_culture,
    make_donor,
    make_harvest,
    package,
    pool,
    process,
    t,
)

pytestmark = pytest.mark.django_db


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def test_lot_list_payload(chain, auth_client):
    lot = lot_at(chain, LotStatus.PACKAGED)
    client = auth_client(chain.qc)
    body = client.get("/api/v1/lots/").json()
    item = next(i for i in body["results"] if i["lot_number"] == lot.lot_number)
    assert item["product"] == {"name": chain.product.name, "gtin": chain.product.gtin}
    assert item["status"] == "packaged" and item["on_hold"] is False
    assert item["volume_in_ml"] == "400.00" and item["volume_out_ml"] == "39.00" and item["yield_percent"] == "97.50"
    assert item["vials"] == {"available": 38, "allocated": 0, "shipped": 0, "received": 0, "destroyed": 0}
    assert item["release"] is None
    assert item["expiry"] == lot.expiry.isoformat()


def test_lot_list_query_count_is_constant(chain, auth_client, django_assert_num_queries):
    client = auth_client(chain.qc)
    lot_at(chain, LotStatus.PACKAGED)
    _queries(client, "/api/v1/lots/")  # warms the process-wide ContentType cache (one query, once per process)
    few, body = _queries(client, "/api/v1/lots/")
    assert len(body["results"]) == 1
    for _ in range(4):
        harvest = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("50"))
        pool(chain, [(harvest, Decimal("50"))])
    lot_at(chain, LotStatus.PACKAGED)
    many, body = _queries(client, "/api/v1/lots/")
    assert len(body["results"]) == 6
    assert many == few
    with django_assert_num_queries(few):
        client.get("/api/v1/lots/?status=packaged&on_hold=false")


@pytest.mark.req("FEAT-LOT-RECORD")
def test_lot_list_values_path_renders_what_the_lot_serializer_renders(chain, auth_client):
    """The list's plain path (B1) and LotSerializer (the schema, the detail's base) agree item by item, a
    signed lot with a hold and no yield included."""
    import json

    from rest_framework.renderers import JSONRenderer

    from batches.api.serializers import LotSerializer
    from batches.selectors import lot_list_queryset, lot_releases, lot_signoffs
    from cmlims.esign.services import signature_sign

    packaged = lot_at(chain, LotStatus.PACKAGED)
    signed = lot_at(chain, LotStatus.PACKAGED)
    signature_sign(subject=signed, signer=chain.qc, username=chain.qc.username, password="correct-horse-battery",
                   meaning="released", reason="", content={"lot_number": signed.lot_number},
                   field_list_version="test-1")
    pooled = lot_at(chain, LotStatus.POOLED)
    audited_update(CMLot.objects.get(pk=pooled.pk), actor=chain.qc, on_hold=True, hold_reason="deviation DEV-1")
    body = auth_client(chain.qc).get("/api/v1/lots/?page_size=500").json()
    lots = list(lot_list_queryset().order_by("-id"))
    signoffs = lot_signoffs(lots)
    expected = LotSerializer(lots, many=True, context={"signoffs": signoffs,
                                                       "releases": lot_releases(lots, signoffs)}).data
    assert body["results"] == json.loads(JSONRenderer().render(expected))  # as the API renders both
    by_number = {item["lot_number"]: item for item in body["results"]}
    assert by_number[signed.lot_number]["release"]["meaning"] == "released"
    assert by_number[pooled.lot_number]["on_hold"] is True and by_number[pooled.lot_number]["yield_percent"] is None
    assert {packaged.lot_number, signed.lot_number, pooled.lot_number} <= by_number.keys()


@pytest.mark.req("FEAT-LOT-RECORD")
def test_lot_list_query_count_does_not_depend_on_page_size(chain, auth_client, django_assert_num_queries):
    client = auth_client(chain.qc)
    for _ in range(3):
        lot_at(chain, LotStatus.PACKAGED)
    few, first = _queries(client, "/api/v1/lots/?page_size=1")
    assert len(first["results"]) == 1 and first["next"]
    with django_assert_num_queries(few):
        body = client.get("/api/v1/lots/?page_size=500").json()
    assert len(body["results"]) == 3
    with django_assert_num_queries(few):  # a later page (by the cursor) costs the same
        assert len(client.get(first["next"]).json()["results"]) == 1


def test_lot_detail_query_count_is_constant_as_harvests_grow(chain, auth_client):
    client = auth_client(chain.qc)
    one = pool(chain, [(make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("80")), Decimal("80"))])
    _queries(client, f"/api/v1/lots/{one.lot_number}/")  # warms the ContentType cache, as above
    few, body = _queries(client, f"/api/v1/lots/{one.lot_number}/")
    assert len(body["genealogy"]["harvests"]) == 1
    harvests = [make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("80"), days_ago=d)
                for d in (1.5, 2, 2.5, 2.7)]
    four = pool(chain, [(h, Decimal("20")) for h in harvests])
    many, body = _queries(client, f"/api/v1/lots/{four.lot_number}/")
    assert len(body["genealogy"]["harvests"]) == 4
    assert body["genealogy"]["donors"][0]["code"] == chain.source.code
    assert many == few


def test_filters(chain, auth_client):
    lot_at(chain, LotStatus.PACKAGED)
    pooled = lot_at(chain, LotStatus.POOLED)
    client = auth_client(chain.lab1)
    body = client.get("/api/v1/lots/?status=pooled").json()
    assert [i["lot_number"] for i in body["results"]] == [pooled.lot_number]
    assert client.get(f"/api/v1/lots/?product={chain.product.pk}").json()["results"]
    assert client.get("/api/v1/lots/?on_hold=true").json()["results"] == []
    assert client.get("/api/v1/lots/?created_after=2000-01-01T00:00:00Z").json()["results"]
    assert client.get("/api/v1/lots/?created_before=2000-01-01T00:00:00Z").json()["results"] == []
    assert client.get(f"/api/v1/lots/?search={chain.source.code}").json()["results"]
    response = client.get("/api/v1/lots/?status=nonsense")
    assert response.status_code == 400 and "status" in response.json()["fields"]


@pytest.mark.req("P11-11.10f", "A11-15")
def test_transition_endpoint_answers_409_with_conditions(chain, auth_client):
    lot = lot_at(chain, LotStatus.POOLED)
    client = auth_client(chain.lab1)
    response = client.post(f"/api/v1/lots/{lot.lot_number}/transitions/", {"to": "freeze_drying"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "transition_not_allowed"
    assert {"filtration_missing", "dryer_not_loaded"} <= {c["code"] for c in body["conditions"]}
    response = client.post(f"/api/v1/lots/{lot.lot_number}/transitions/", {"to": "released"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "signature_required"
    response = client.post(f"/api/v1/lots/{lot.lot_number}/transitions/", {"to": "qc_complete"}, format="json")
    assert response.status_code == 403
    response = client.post(f"/api/v1/lots/{lot.lot_number}/transitions/", {"to": "bogus"}, format="json")
    assert response.status_code == 400 and "to" in response.json()["fields"]
    assert client.post("/api/v1/lots/CM00-9999/transitions/", {"to": "packaged"}, format="json").status_code == 404


@pytest.mark.req("FEAT-LOT-RECORD", "README-SECOND-PERSON")
def test_manufacturing_steps_over_the_api(chain, auth_client):
    client = auth_client(chain.lab1)
    harvest = client.post(f"/api/v1/cultures/{chain.culture.code}/harvests/", {
        "conditioning_started_at": t(3).isoformat(), "conditioning_ended_at": t(1).isoformat(),
        "volume_ml": "250.00", "hold_temperature_c": "4.0", "reason": "entered late: collected at the weekend",
    }, format="json")
    assert harvest.status_code == 201, harvest.content
    harvest_id = harvest.json()["id"]
    negative = client.post(f"/api/v1/cultures/{chain.culture.code}/harvests/", {
        "conditioning_started_at": t(3).isoformat(), "conditioning_ended_at": t(1).isoformat(),
        "volume_ml": "-5", "hold_temperature_c": "4.0",
    }, format="json")
    assert negative.status_code == 400 and "volume_ml" in negative.json()["fields"]
    created = client.post("/api/v1/lots/", {
        "product": chain.product.pk, "pooled_at": t(0, -1).isoformat(),
        "contributions": [{"harvest": harvest_id, "volume_ml": "200"}],
    }, format="json")
    assert created.status_code == 201, created.content
    lot_number = created.json()["lot_number"]
    too_much = client.post("/api/v1/lots/", {
        "product": chain.product.pk, "contributions": [{"harvest": harvest_id, "volume_ml": "60"}],
    }, format="json")
    assert too_much.status_code == 400
    assert "contributions[0].volume_ml" in too_much.json()["fields"]
    filtration = client.post(f"/api/v1/lots/{lot_number}/filtration/", {
        "filter_pore_size_um": "0.22", "filter_lot": "F-1", "integrity_test_method": "bubble_point",
        "integrity_test_limit_bar": "3.2", "integrity_test_measured_bar": "3.5", "volume_filtered_ml": "199",
    }, format="json")
    assert filtration.status_code == 200, filtration.content
    assert filtration.json()["genealogy"]["processing"]["integrity_test_passed"] is True
    verify = auth_client(chain.lab2).post(f"/api/v1/lots/{lot_number}/verifications/", {"step": "pooling"},
                                          format="json")
    assert verify.status_code == 200
    same = client.post(f"/api/v1/lots/{lot_number}/verifications/", {"step": "filtration"}, format="json")
    assert same.status_code == 409 and same.json()["code"] == "same_person"
    patch = client.patch(f"/api/v1/harvests/{harvest_id}/", {"volume_ml": "150", "reason": "re-measured"},
                         format="json")
    assert patch.status_code == 400 and "volume_ml" in patch.json()["fields"]


@pytest.mark.req("RULE-9", "1271-290")
def test_traceability_both_ways(chain, auth_client):
    lot = lot_at(chain, LotStatus.PACKAGED)
    client = auth_client(chain.qc)
    serial = lot.vials.order_by("sequence").first().serial
    trace = client.get(f"/api/v1/vials/{serial}/trace/").json()
    assert trace["lot"]["lot_number"] == lot.lot_number
    assert trace["donors"][0]["code"] == chain.source.code
    assert trace["banks"][0]["code"] == chain.bank.code
    assert trace["cultures"][0]["code"] == chain.culture.code
    assert trace["harvests"][0]["volume_taken_ml"] == "400.00"
    forward = client.get(f"/api/v1/donors/{chain.source.code}/trace/").json()
    assert [entry["lot_number"] for entry in forward["lots"]] == [lot.lot_number]
    assert forward["lots"][0]["vials"]["available"] == 38
    assert serial in {v["serial"] for v in forward["vials"]}
    assert forward["vial_count"] == 38 and forward["lot_count"] == 1
    assert client.get("/api/v1/vials/NOPE/trace/").status_code == 404
    assert client.get("/api/v1/donors/NOPE/trace/").status_code == 404


def test_create_and_update_routes_allow_only_their_method(chain, auth_client):
    client = auth_client(chain.lab1)
    assert client.patch("/api/v1/products/", {"name": "x"}, format="json").status_code == 405
    assert client.post(f"/api/v1/products/{chain.product.pk}/", {"name": "x"}, format="json").status_code == 405
    response = client.patch(f"/api/v1/donors/{chain.source.code}/", {"eligibility_notes": "re-reviewed",
                                                                     "reason": "annual review"}, format="json")
    assert response.status_code == 200 and response.json()["eligibility_notes"] == "re-reviewed"
    response = client.patch(f"/api/v1/donors/{chain.source.code}/", {"voided_at": "2020-01-01T00:00:00Z"},
                            format="json")
    assert response.status_code == 200  # voided_at is not writable: the parser ignores it, nothing is stored
    chain.source.refresh_from_db()
    assert chain.source.voided_at is None


@pytest.mark.req("FEAT-LOT-RECORD")
def test_vials_move_and_destroy_over_the_api(chain, auth_client):
    from batches.models import Vial
    from batches.services import products
    from cmlims.models import AuditEntry

    lot = lot_at(chain, LotStatus.PACKAGED)
    vial = lot.vials.order_by("sequence").first()
    products.storage_location_create(actor=chain.lab1, code="FRZ-02", name="Freezer 2", kind="freezer",
                                     temperature_min_c=Decimal("-25"), temperature_max_c=Decimal("-15"))
    url = f"/api/v1/vials/{vial.serial}/"
    assert auth_client(chain.qc).post(url + "move/", {"storage_location": "FRZ-02"},
                                      format="json").status_code == 403
    client = auth_client(chain.lab1)
    response = client.post(url + "move/", {"storage_location": "NOWHERE"}, format="json")
    assert response.status_code == 400 and "storage_location" in response.json()["fields"]
    response = client.post(url + "move/", {"storage_location": "FRZ-02", "reason": "freezer 1 defrost"},
                           format="json")
    assert response.status_code == 200, response.content
    vial = Vial.objects.select_related("storage_location").get(pk=vial.pk)
    assert vial.storage_location.code == "FRZ-02"
    entry = AuditEntry.objects.filter(object_type="batches.vial", object_id=str(vial.pk)).last()
    assert entry.username == "lab1" and "storage_location_id" in entry.changes
    response = client.post(url + "destroy/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["fields"]
    assert client.post(url + "destroy/", {"reason": "cracked"}, format="json").status_code == 200
    response = client.post(url + "move/", {"storage_location": "FRZ-01"}, format="json")
    assert response.status_code == 409 and response.json()["vials"][0]["serial"] == vial.serial
    assert client.post("/api/v1/vials/NOPE/move/", {"storage_location": "FRZ-01"}, format="json").status_code == 404


@pytest.mark.parametrize("url", ["/api/v1/harvests/abc/void/", "/api/v1/passages/abc/verify/",
                                 "/api/v1/freeze-drying-phases/1.5/void/", "/api/v1/cultures/abc/void/",
                                 "/api/v1/vials/abc/destroy/"])
def test_a_record_action_on_a_key_of_the_wrong_form_is_404_not_500(chain, auth_client, url):
    response = auth_client(chain.lab1).post(url, {"reason": "entered in error"}, format="json")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_packaged_lot_detail_has_the_freeze_drying_and_packaging_summary_at_constant_queries(chain, auth_client):
    client = auth_client(chain.qc)
    small = lot_at(chain, LotStatus.PACKAGED, vials=40)
    client.get(f"/api/v1/lots/{small.lot_number}/")  # warms the per-process content type cache
    few, body = _queries(client, f"/api/v1/lots/{small.lot_number}/")
    drying, packed = body["genealogy"]["freeze_drying"], body["genealogy"]["packaging"]
    assert drying["vials_loaded"] == 40 and drying["completed"] is True
    assert [p["phase"] for p in drying["phases"]] == ["freezing", "primary_drying", "secondary_drying"]
    assert packed["vials_packaged"] == 38 and packed["vials_rejected"] == 2 and packed["vials_unaccounted"] == 0
    assert packed["storage_location"] == chain.location.code and packed["verified_by"]
    assert body["vials"]["available"] == 38 and body["expiry"] == small.expiry.isoformat()
    big = lot_at(chain, LotStatus.PACKAGED, vials=120, volume=Decimal("1200"))
    many, body = _queries(client, f"/api/v1/lots/{big.lot_number}/")
    assert body["vials"]["available"] == 118
    assert many == few


@pytest.mark.req("P11-11.10d", "P11-11.10g")
def test_who_reads_lots_and_traces(chain, auth_client, make_user, api_client):
    """DESIGN roles: every role reads lots; the integration account reads lots, not traces; no role, no read."""
    from cmlims import roles

    lot = lot_at(chain, LotStatus.PACKAGED)
    serial = lot.vials.first().serial
    traces = [f"/api/v1/vials/{serial}/trace/", f"/api/v1/donors/{chain.source.code}/trace/"]
    lots_urls = ["/api/v1/lots/", f"/api/v1/lots/{lot.lot_number}/"]
    robot = auth_client(make_user("robot", roles.INTEGRATION))
    shipper = auth_client(make_user("ship1", roles.SHIPPING_COORDINATOR))
    nobody = auth_client(make_user("nobody"))
    for url in lots_urls:
        assert robot.get(url).status_code == 200
        assert shipper.get(url).status_code == 200
        assert nobody.get(url).status_code == 403
        assert api_client.get(url).status_code == 401
    for url in traces:
        assert shipper.get(url).status_code == 200
        response = robot.get(url)
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
        assert nobody.get(url).status_code == 403
        assert api_client.get(url).status_code == 401


@pytest.mark.req("FEAT-PERF-TRACE")
def test_vial_trace_is_two_queries_whatever_the_genealogy(chain, auth_client, django_assert_num_queries):
    """Issue 14 B8: its lot's contributions with everything upstream, the lot and the vial joined to them (were
    two queries), then where it went; the genealogy it shows is the lot detail's."""
    from batches import selectors

    small = lot_at(chain, LotStatus.PACKAGED)
    harvests = [make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("200"), verifier=chain.lab2,
                             days_ago=d) for d in (1.5, 2, 2.5)]
    big = process(chain, pool(chain, [(h, Decimal("200")) for h in harvests]))
    freeze_dry(chain, big, vials=6)
    package(chain, big, vials=6, rejected=0)
    client = auth_client(chain.qc)
    for lot, count in ((small, 1), (big, 3)):
        serial = lot.vials.order_by("sequence").values_list("serial", flat=True).first()
        with django_assert_num_queries(2):
            trace = selectors.vial_trace(serial)
        assert len(trace["harvests"]) == count
    detail = client.get(f"/api/v1/lots/{small.lot_number}/").json()["genealogy"]
    serial = small.vials.order_by("sequence").values_list("serial", flat=True).first()
    trace = client.get(f"/api/v1/vials/{serial}/trace/").json()
    for key in ("harvests", "cultures", "banks", "donors"):
        assert trace[key] == detail[key]


@pytest.mark.req("FEAT-PERF-TRACE", "FEAT-PERF-ADMIN")
def test_donor_trace_shows_first_rows_and_totals_in_constant_queries(chain, django_assert_num_queries):
    """Issue 14 B8: the donor trace is bounded (first rows plus totals) and its query count does not grow
    with the donor's lots and vials."""
    from batches import selectors

    first = lot_at(chain, LotStatus.PACKAGED, vials=5)  # packages 3 (2 rejected)
    # Eight: the donor's lot ids, the donor with its banks (one LEFT JOIN), the lots shown, their vial counts,
    # the vials shown, their destinations, the vial total (an index-only count) and the consignees (shipping's
    # vial_consignees, asked per consignee: one pass over the donor's vials grouped by consignee was a query
    # less and 110 ms slower for the busiest donor of the default scale).
    with django_assert_num_queries(8):
        one = selectors.donor_trace(chain.source.code, rows=2)
    lot_at(chain, LotStatus.PACKAGED, vials=6)
    lot_at(chain, LotStatus.PACKAGED, vials=7)
    with django_assert_num_queries(8):
        three = selectors.donor_trace(chain.source.code, rows=2)
    assert (one["lot_count"], one["vial_count"], len(one["vials"])) == (1, 3, 2)
    assert (three["lot_count"], three["vial_count"], len(three["vials"])) == (3, 12, 2)
    assert [lot["lot_number"] for lot in three["lots"]] == [first.lot_number, three["lots"][1]["lot_number"]]
    assert three["lots"][0]["vials"]["available"] == 3
    assert [v["serial"] for v in three["vials"]] == list(
        first.vials.order_by("sequence").values_list("serial", flat=True)[:2])


@pytest.mark.req("RULE-9", "1271-290")
def test_donor_trace_of_a_pooled_lot_counts_only_that_donors_contributions(chain):
    """A lot pooled from two donors' harvests is in both donors' traces, each showing the volume and cultures
    that donor gave (the shown lots' contributions are read by lot, the other donor's left out)."""
    from batches import selectors

    other = make_donor(chain.lab1, code="DN-0002")
    culture = make_conditioning_culture(chain.lab1, chain.product, make_bank(chain.lab1, other, code="WCB-0002"),
                                        code="CU-0002")
    mine = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("300"), verifier=chain.lab2)
    theirs = make_harvest(chain.lab1, culture, volume_ml=Decimal("500"), verifier=chain.lab2)
    lot = process(chain, pool(chain, [(mine, Decimal("300")), (theirs, Decimal("450"))]))
    freeze_dry(chain, lot, vials=4)
    package(chain, lot, vials=4, rejected=0)
    for code, volume, cultures in ((chain.source.code, Decimal("300"), ["CU-0001"]),
                                   ("DN-0002", Decimal("450"), ["CU-0002"])):
        trace = selectors.donor_trace(code)
        assert [(entry["lot_number"], entry["volume_from_donor_ml"], entry["cultures"]) for entry in trace["lots"]] \
            == [(lot.lot_number, volume, cultures)]
        assert (trace["lot_count"], trace["vial_count"]) == (1, 4)


@pytest.mark.req("FEAT-LOT-RECORD")
def test_search_by_vial_serial_finds_its_lot_in_the_api_and_the_admin(chain, auth_client, client):
    first, second = lot_at(chain, LotStatus.PACKAGED), lot_at(chain, LotStatus.PACKAGED)
    serial = second.vials.order_by("sequence").values_list("serial", flat=True).first()
    body = auth_client(chain.qc).get(f"/api/v1/lots/?search={serial}").json()
    assert [item["lot_number"] for item in body["results"]] == [second.lot_number]
    chain.lab1.is_staff = True
    chain.lab1.save()
    client.force_login(chain.lab1)
    page = client.get(f"/admin/batches/cmlot/?q={serial}").content.decode()
    assert second.lot_number in page and first.lot_number not in page
    part = auth_client(chain.qc).get(f"/api/v1/lots/?search={first.lot_number[-4:]}").json()  # not a serial
    assert first.lot_number in [item["lot_number"] for item in part["results"]]


@pytest.mark.req("FEAT-PERF-API")
def test_lot_list_page_without_signed_lots_is_two_queries(chain, auth_client, django_assert_num_queries):
    """Issue 14 B1: the token with its user and roles, then the page (which says which rows are signed): no
    signature read when none is; a signed lot on the page adds its sign-off read and content check."""
    from cmlims.esign.services import signature_sign

    client = auth_client(chain.qc)
    lot_at(chain, LotStatus.PACKAGED)
    signed = lot_at(chain, LotStatus.PACKAGED)
    client.get("/api/v1/lots/")  # warms the process-wide ContentType cache
    with django_assert_num_queries(2):
        assert len(client.get("/api/v1/lots/?page_size=500").json()["results"]) == 2
    signature_sign(subject=signed, signer=chain.qc, username=chain.qc.username, password="correct-horse-battery",
                   meaning="released", reason="", content={"lot_number": signed.lot_number},
                   field_list_version="test-1")
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/api/v1/lots/?page_size=500").json()
    assert len(ctx.captured_queries) > 2
    assert {item["lot_number"]: item["release"] is not None for item in body["results"]}[signed.lot_number]
    first_page = client.get("/api/v1/lots/?page_size=1").json()
    assert first_page["results"][0]["lot_number"] == signed.lot_number
    with django_assert_num_queries(2):  # the unsigned page after it still reads no signature
        assert client.get(first_page["next"]).json()["results"][0]["release"] is None
