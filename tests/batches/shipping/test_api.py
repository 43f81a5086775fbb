"""Shipping API: every endpoint, its refusals and error shapes, recall completeness, query counts."""

import csv
import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from batches.models import LotStatus
from batches.shipping import services
from batches.shipping.gs1 import GS
from batches.shipping.models import ShipmentStatus
from cmlims import roles
from cmlims.documents.models import DocumentJob
from tests.support.builders import PASSWORD, clean_log, log_with, sign, vial_serials

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(auth_client, world):
    return auth_client(world.coordinator)


def url(shipment_id, action=""):
    return f"/api/v1/shipments/{shipment_id}/" + (f"{action}/" if action else "")


def serial(lot, i):
    return vial_serials(lot, i)[0]


def test_consignees_create_list_and_field_errors(client, world):
    response = client.post("/api/v1/consignees/", {
        "name": "Verteiler Süd GmbH", "kind": "distributor", "address_line1": "Ring 4", "city": "München",
        "country": "DE", "contact_name": "B. Huber", "contact_email": "huber@example.org",
    }, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "Verteiler Süd GmbH"
    bad = client.post("/api/v1/consignees/", {"name": "X", "address_line1": "a", "city": "b", "country": "de",
                                              "contact_name": "c"}, format="json")
    assert bad.status_code == 400 and "country" in bad.json()["fields"]
    missing = client.post("/api/v1/consignees/", {"name": "Y"}, format="json")
    assert missing.status_code == 400 and {"address_line1", "city", "country"} <= set(missing.json()["fields"])
    listing = client.get("/api/v1/consignees/")
    assert [c["name"] for c in listing.json()["results"]] == ["Klinik Nord", "Verteiler Süd GmbH"]
    patched = client.patch(f"/api/v1/consignees/{world.consignee.pk}/", {"contact_phone": "+49 40 1"}, format="json")
    assert patched.status_code == 200 and patched.json()["contact_phone"] == "+49 40 1"


@pytest.mark.req("P11-11.10g", "P11-11.10d")
def test_roles_on_the_api(auth_client, world, make_user, api_client):
    assert api_client.get("/api/v1/shipments/").status_code == 401
    robot = auth_client(make_user("robot", roles.INTEGRATION))
    assert robot.get("/api/v1/shipments/").status_code == 403
    qc = auth_client(make_user("qc1", roles.QC_OFFICER))
    assert qc.get("/api/v1/shipments/").status_code == 200
    response = qc.post("/api/v1/shipments/", {"consignee": world.consignee.pk, "product": world.product.pk},
                       format="json")
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


@pytest.mark.req("FEAT-SHIPPING")
def test_full_flow_over_the_api(client, world):
    lot = world.lot(vials=4)
    created = client.post("/api/v1/shipments/", {"consignee": world.consignee.pk, "product": world.product.pk,
                                                 "courier": "MedEx"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    sid = body["id"]
    assert body["status"] == "draft" and len(body["sscc"]) == 18 and body["transport_range_c"] == {"min": "2",
                                                                                                   "max": "8"}
    scan = f"]d201{world.product.gtin}17{lot.expiry:%y%m%d}10{lot.lot_number}{GS}21{serial(lot, 1)}"
    response = client.post(url(sid, "allocate"), {"vials": [scan, serial(lot, 2)]}, format="json")
    assert response.status_code == 200, response.content
    assert [v["serial"] for v in response.json()["vials"]] == [serial(lot, 1), serial(lot, 2)]
    response = client.post(url(sid, "allocate"), {"lot": lot.lot_number, "count": 1}, format="json")
    assert [v["serial"] for v in response.json()["vials"]][-1] == serial(lot, 3)
    response = client.post(url(sid, "release-vials"), {"vials": [serial(lot, 3)]}, format="json")
    assert len(response.json()["vials"]) == 2
    assert client.patch(url(sid), {"tracking_number": "MX-1"}, format="json").json()["tracking_number"] == "MX-1"
    fixed = client.patch(url(sid), {"product": world.product.pk}, format="json")  # set when the shipment was made
    assert fixed.status_code == 400 and fixed.json()["fields"] == {"product": ["cannot be changed here"]}
    response = client.post(url(sid, "pack"), {"shipper_type": "insulated_box", "coolant": "gel_packs"},
                           format="json")
    assert response.json()["status"] == "packed"
    assert client.patch(url(sid), {"notes": "x"}, format="json").status_code == 409
    wrong = client.post(url(sid, "ship"), {**sign(world.coordinator, "shipped"), "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    response = client.post(url(sid, "ship"), {**sign(world.coordinator, "shipped"), "party": "Driver"},
                           format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "shipped" and body["signatures"][0]["meaning"] == "shipped"
    assert body["signatures"][0]["printed_name"] == "Sam Shipper"
    response = client.post(url(sid, "deliver"), {"party": "Front desk"}, format="json")
    assert response.json()["status"] == "delivered"
    start = timezone.now() - dt.timedelta(hours=2)
    upload = SimpleUploadedFile("log.csv", clean_log(start), content_type="text/csv")
    response = client.post(url(sid, "temperature-log"), {"file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["excursion"] is False and response.json()["sample_count"] == 12
    chart = client.get(url(sid, "temperature-log/chart"))
    assert chart.status_code == 200 and chart["Content-Type"] == "image/png" and chart.content[:4] == b"\x89PNG"
    response = client.post(url(sid, "receive"), {**sign(world.coordinator, "received"),
                                                 "received_by_name": "Nurse Ida"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "received"
    assert [e["kind"] for e in body["custody"]] == ["packed", "handed_to_courier", "delivered", "received"]
    assert [s["meaning"] for s in body["signatures"]] == ["shipped", "received"]
    assert [s["changed_after_signing"] for s in body["signatures"]] == [False, False]
    # A covered field edited after signing (through the audit API, with a reason) shows on both signatures.
    from batches.shipping.models import Shipment
    from cmlims.audit import audited_update

    audited_update(Shipment.objects.get(pk=sid), actor=world.coordinator, reason="typo in the tracking number",
                   tracking_number="MX-2")
    signatures = client.get(url(sid)).json()["signatures"]
    assert [(s["changed_after_signing"], s["changed_fields"]) for s in signatures] == [
        (True, ["tracking_number"]), (True, ["tracking_number"])]


@pytest.mark.req("RULE-4", "1271-265")
def test_allocation_refusal_is_409_with_vials(client, world):
    lot = world.lot(vials=2, status=LotStatus.QC_COMPLETE)
    shipment = world.shipment()
    response = client.post(url(shipment.pk, "allocate"), {"vials": [serial(lot, 1), "NOPE"]}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "vials_refused"
    assert {v["serial"] for v in body["vials"]} == {serial(lot, 1), "NOPE"}
    assert client.post(url(shipment.pk, "allocate"), {"count": 1}, format="json").status_code == 409
    assert client.post(url(shipment.pk, "allocate"), {}, format="json").status_code == 400
    assert client.post(url(shipment.pk, "allocate"), {"lot": lot.lot_number}, format="json").status_code == 400
    assert client.post(url(shipment.pk, "allocate"), {"count": "many"}, format="json").status_code == 400
    assert client.post(url(999999, "allocate"), {"count": 1}, format="json").status_code == 404


def delivered_shipment(world):
    world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    services.shipment_pack(shipment=shipment, actor=world.coordinator, shipper_type="insulated_box",
                           coolant="gel_packs")
    services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="C", tracking_number="T",
                           **sign(world.coordinator, "shipped"))
    return services.shipment_deliver(shipment=shipment, actor=world.coordinator)


@pytest.mark.req("FEAT-COLD-CHAIN")
def test_bad_logger_file_is_400_with_rows_and_stores_nothing(client, world):
    shipment = delivered_shipment(world)
    data = b"timestamp,temperature_c\n2026-03-01T08:00:00Z,5\n2026-03-01T08:05:00,abc\n"
    response = client.post(url(shipment.pk, "temperature-log"),
                           {"file": SimpleUploadedFile("bad.csv", data, content_type="text/csv")}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert {(r["row"], r["column"]) for r in body["rows"]} == {(2, "timestamp"), (2, "temperature_c")}
    assert not shipment.temperature_logs.exists()
    png = client.post(url(shipment.pk, "temperature-log"),
                      {"file": SimpleUploadedFile("x.png", b"\x89PNG", content_type="image/png")}, format="multipart")
    assert png.status_code == 415
    assert client.post(url(shipment.pk, "temperature-log"), {}, format="multipart").status_code == 400
    assert client.get(url(shipment.pk, "temperature-log")).status_code == 404


@pytest.mark.req("RULE-6", "FEAT-COLD-CHAIN", "README-EXCURSION-RECEIPT")
def test_excursion_over_the_api_holds_receipt(client, world):
    shipment = delivered_shipment(world)
    start = timezone.now() - dt.timedelta(hours=3)
    data = log_with(start, ["5", "5"] + ["9"] * 6 + ["5", "5"])
    response = client.post(url(shipment.pk, "temperature-log"),
                           {"file": SimpleUploadedFile("e.csv", data, content_type="text/csv")}, format="multipart")
    assert response.status_code == 201
    assert response.json()["excursion"] is True and response.json()["investigation"]["status"] == "open"
    assert client.get(url(shipment.pk)).json()["status"] == ShipmentStatus.RECEIPT_ON_HOLD
    response = client.post(url(shipment.pk, "receive"), {**sign(world.coordinator, "received"),
                                                         "received_by_name": "Ida"}, format="json")
    assert response.status_code == 409
    assert response.json()["conditions"][0]["code"] == "excursion_investigation_open"


@pytest.mark.req("RULE-6", "README-EXCURSION-RECEIPT", "P11-11.200a")
def test_a_clean_replacement_file_does_not_bypass_the_open_excursion_investigation(client, world, make_user):
    from cmlims.investigations.services import investigation_close

    shipment = delivered_shipment(world)
    start = timezone.now() - dt.timedelta(hours=3)
    hot = log_with(start, ["5", "5"] + ["9"] * 6 + ["5", "5"])
    response = client.post(url(shipment.pk, "temperature-log"),
                           {"file": SimpleUploadedFile("e.csv", hot, content_type="text/csv")}, format="multipart")
    investigation_id = response.json()["investigation"]["id"]
    receive = {**sign(world.coordinator, "received"), "received_by_name": "Ida"}
    response = client.post(url(shipment.pk, "receive"), receive, format="json")
    assert response.status_code == 409 and response.json()["code"] == "receipt_blocked"

    def replace(**signature):
        return client.post(url(shipment.pk, "temperature-log"),
                           {"file": SimpleUploadedFile("clean.csv", clean_log(start), content_type="text/csv"),
                            "reason": "sensor glitch", **signature}, format="multipart")

    response = replace()
    assert response.status_code == 400 and "qc_username" in response.json()["fields"]
    qc = make_user("qc1", roles.QC_OFFICER, first_name="Quinn", last_name="Checker")
    response = replace(qc_username=qc.username, qc_password=PASSWORD, qc_meaning="logger file replaced")
    assert response.status_code == 201, response.content
    assert response.json()["excursion"] is False
    response = client.post(url(shipment.pk, "receive"), receive, format="json")
    assert response.status_code == 409 and response.json()["code"] == "receipt_blocked"
    assert [c["code"] for c in response.json()["conditions"]] == ["excursion_investigation_open"]
    assert client.get(url(shipment.pk)).json()["status"] == ShipmentStatus.RECEIPT_ON_HOLD

    from cmlims.investigations.models import Investigation

    investigation_close(investigation=Investigation.objects.get(pk=investigation_id), actor=qc,
                        conclusion="30 min at 9 °C is inside the stability data", product_disposition="usable")
    response = client.post(url(shipment.pk, "receive"), receive, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "received"


def test_cancel_over_the_api(client, world):
    shipment = world.shipment()
    assert client.post(url(shipment.pk, "cancel"), {"reason": ""}, format="json").status_code == 400
    response = client.post(url(shipment.pk, "cancel"), {"reason": "order withdrawn"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert client.post(url(shipment.pk, "cancel"), {"reason": "again"}, format="json").status_code == 409


@pytest.mark.req("FEAT-SHIPPING")
def test_documents_are_jobs(client, world):
    world.lot(vials=2)
    shipment = world.shipment()
    assert client.post(url(shipment.pk, "labels"), {}, format="json").status_code == 409  # no vials yet
    services.shipment_allocate_count(shipment=shipment, count=2, actor=world.coordinator)
    response = client.post(url(shipment.pk, "labels"), {"format": "zpl"}, format="json")
    assert response.status_code == 202, response.content
    job = DocumentJob.objects.get(pk=response.json()["job"])
    assert job.kind == "shipping_label" and job.params["format"] == "zpl" and job.subject_id == str(shipment.pk)
    assert response.json()["url"].endswith(f"/{job.pk}/")
    response = client.post(url(shipment.pk, "packing-list"), format="json")
    assert response.status_code == 202 and DocumentJob.objects.get(pk=response.json()["job"]).kind == "packing_list"
    assert client.post(url(shipment.pk, "labels"), {"format": "svg"}, format="json").status_code == 400


def test_list_and_detail_query_counts(client, world, django_assert_num_queries):
    lot = world.lot(vials=6)
    for i in range(3):
        shipment = world.shipment()
        services.shipment_allocate_scans(shipment=shipment, scans=[serial(lot, 2 * i + 1), serial(lot, 2 * i + 2)],
                                         actor=world.coordinator)
    client.get("/api/v1/shipments/")  # warm the token/session caches
    with django_assert_num_queries(2):  # the token with its user and roles, the page of shipments
        response = client.get("/api/v1/shipments/")
    assert [s["vial_count"] for s in response.json()["results"]] == [2, 2, 2]
    detail_queries = None
    for sid in (shipment.pk,):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        client.get(url(sid))  # warm the process-wide ContentType cache
        with CaptureQueriesContext(connection) as captured:
            client.get(url(sid))
        detail_queries = len(captured)
    # a shipment with more vials costs the same number of queries
    more = world.lot(vials=5)
    services.shipment_allocate_count(shipment=shipment, count=5, lot_number=more.lot_number, actor=world.coordinator)
    with django_assert_num_queries(detail_queries):
        response = client.get(url(shipment.pk))
    assert len(response.json()["vials"]) == 7


def recall_world(world):
    """Two donors; lot A from donor 1, lot B pooled from donors 1 and 2, lot C from donor 2 only.
    Vials of A and B shipped to two consignees; some of B still in stock; C in a draft shipment."""
    d1, d2 = world.donor("DN-0100"), world.donor("DN-0200")
    lot_a = world.lot(vials=3, donors=(d1,))
    lot_b = world.lot(vials=4, donors=(d1, d2))
    lot_c = world.lot(vials=2, donors=(d2,))
    other = services.consignee_create(actor=world.coordinator, name="=HYPERLINK(\"http://evil\")", kind="clinic",
                                      address_line1="-1 Main St", city="Graz", country="AT", contact_name="@admin")
    first = world.shipment()
    services.shipment_allocate_scans(shipment=first, scans=[serial(lot_a, 1), serial(lot_b, 1)],
                                     actor=world.coordinator)
    services.shipment_pack(shipment=first, actor=world.coordinator, shipper_type="insulated_box", coolant="gel_packs")
    services.shipment_ship(shipment=first, actor=world.coordinator, courier="C", tracking_number="T1",
                           **sign(world.coordinator, "shipped"))
    second = services.shipment_create(consignee=other, product=world.product, actor=world.coordinator)
    services.shipment_allocate_scans(shipment=second, scans=[serial(lot_b, 2), serial(lot_a, 2)],
                                     actor=world.coordinator)
    cancelled = world.shipment()
    services.shipment_allocate_scans(shipment=cancelled, scans=[serial(lot_a, 3)], actor=world.coordinator)
    services.shipment_cancel(shipment=cancelled, actor=world.coordinator, reason="withdrawn")
    draft_c = world.shipment()
    services.shipment_allocate_scans(shipment=draft_c, scans=[serial(lot_c, 1)], actor=world.coordinator)
    return lot_a, lot_b, lot_c, first, second, cancelled, draft_c, other


@pytest.mark.req("RULE-9", "FEAT-RECALL", "1271-290")
def test_recall_from_a_lot_is_complete(client, world):
    lot_a, lot_b, lot_c, first, second, cancelled, draft_c, other = recall_world(world)
    response = client.get(f"/api/v1/lots/{lot_a.lot_number}/recall/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["recall_of"] == {"type": "lot", "id": lot_a.lot_number}
    assert [v["serial"] for v in body["vials"]] == [serial(lot_a, i) for i in (1, 2, 3)]
    where = {v["serial"]: v["shipment"] for v in body["vials"]}
    assert where == {serial(lot_a, 1): first.reference, serial(lot_a, 2): second.reference, serial(lot_a, 3): None}
    assert {s["reference"] for s in body["shipments"]} == {first.reference, second.reference}
    assert {c["name"] for c in body["consignees"]} == {"Klinik Nord", other.name}
    assert body["summary"] == {"lots": 1, "vials": 3, "vials_off_site": 1, "shipments": 2, "consignees": 2}
    assert client.get("/api/v1/lots/CM99-9999/recall/").status_code == 404


@pytest.mark.req("RULE-9", "FEAT-PERF-ADMIN")
def test_donor_trace_counts_every_vial_and_names_every_consignee(client, world, django_assert_num_queries):
    """The donor trace counts every live vial of the donor and names every consignee a live allocation of one
    went to (shipping's ``vial_consignees``): a released allocation names nobody."""
    from batches import selectors

    lot_a, lot_b, lot_c, first, second, cancelled, draft_c, other = recall_world(world)
    gone = services.consignee_create(actor=world.coordinator, name="Withdrawn Clinic", kind="clinic",
                                     address_line1="2 Side St", city="Linz", country="AT", contact_name="x")
    withdrawn = services.shipment_create(consignee=gone, product=world.product, actor=world.coordinator)
    services.shipment_allocate_scans(shipment=withdrawn, scans=[serial(lot_a, 3)], actor=world.coordinator)
    services.shipment_cancel(shipment=withdrawn, actor=world.coordinator, reason="withdrawn")
    # the donor's lot ids, the donor with its banks, the lots shown, their vial counts, the vials shown, their
    # destinations, the vial total, the consignees
    with django_assert_num_queries(8):
        trace = selectors.donor_trace("DN-0100", rows=2)
    assert (trace["lot_count"], trace["vial_count"]) == (2, 7)
    assert trace["consignees"] == sorted(["Klinik Nord", other.name])
    assert [v["serial"] for v in trace["vials"]] == [serial(lot_a, 1), serial(lot_a, 2)]
    assert [d["shipment"] for d in trace["vials"][0]["destinations"]] == [first.reference]
    body = client.get("/api/v1/donors/DN-0200/trace/").json()
    assert body["vial_count"] == 6 and body["consignees"] == sorted(["Klinik Nord", other.name])


@pytest.mark.req("RULE-9", "FEAT-RECALL", "1271-290")
def test_recall_from_a_donor_reaches_every_lot_vial_and_consignee(client, world):
    lot_a, lot_b, lot_c, first, second, cancelled, draft_c, other = recall_world(world)
    body = client.get("/api/v1/donors/DN-0200/recall/").json()
    assert [lot["lot_number"] for lot in body["lots"]] == [lot_b.lot_number, lot_c.lot_number]
    assert len(body["vials"]) == 6
    assert {s["reference"] for s in body["shipments"]} == {first.reference, second.reference, draft_c.reference}
    body = client.get("/api/v1/donors/DN-0100/recall/").json()
    assert [lot["lot_number"] for lot in body["lots"]] == [lot_a.lot_number, lot_b.lot_number]
    assert body["summary"]["vials"] == 7
    assert cancelled.reference not in {s["reference"] for s in body["shipments"]}
    assert client.get("/api/v1/donors/NOBODY/recall/").status_code == 404


@pytest.mark.req("FEAT-RECALL", "README-CSV-INJECTION", "P11-11.10bc")
def test_recall_csv_is_complete_and_neutralised(client, world):
    lot_a, *_rest, other = recall_world(world)
    response = client.get(f"/api/v1/lots/{lot_a.lot_number}/recall/csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["vial_serial"] for r in rows] == [serial(lot_a, i) for i in (1, 2, 3)]
    evil = next(r for r in rows if r["vial_serial"] == serial(lot_a, 2))
    assert evil["consignee"] == "'" + other.name
    assert evil["consignee_address"] == "'-1 Main St, Graz" and evil["contact_name"] == "'@admin"
    donor = client.get("/api/v1/donors/DN-0100/recall/csv/")
    assert len(list(csv.DictReader(io.StringIO(donor.content.decode())))) == 7


def test_lot_recall_post_still_reaches_qc(auth_client, world, make_user):
    """The shared path: POST is QC's signed recall (refused here because the officer gives a wrong password)."""
    lot = world.lot(vials=1)
    qc = make_user("qc9", roles.QC_OFFICER)
    response = auth_client(qc).post(f"/api/v1/lots/{lot.lot_number}/recall/",
                                    {"username": "qc9", "password": "wrong", "reason": "complaint"}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid" and "password" in response.json()["fields"]


def test_consignee_list_and_recall_cost_the_same_queries_with_more_rows(client, world, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    donor = world.donor("DN-0777")
    lot = world.lot(vials=2, donors=(donor,))
    services.shipment_allocate_count(shipment=world.shipment(), count=1, actor=world.coordinator)

    def cost(path):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    consignees, by_lot, by_donor = (cost("/api/v1/consignees/"), cost(f"/api/v1/lots/{lot.lot_number}/recall/"),
                                    cost("/api/v1/donors/DN-0777/recall/"))
    for i in range(3):
        services.consignee_create(actor=world.coordinator, name=f"Clinic {i}", address_line1="a", city="b",
                                  country="DE", contact_name="c")
    more = world.lot(vials=6, donors=(donor,))
    services.shipment_allocate_count(shipment=world.shipment(), count=4, lot_number=more.lot_number,
                                     actor=world.coordinator)
    services.shipment_allocate_count(shipment=world.shipment(), count=1, lot_number=lot.lot_number,
                                     actor=world.coordinator)
    with django_assert_num_queries(consignees):
        client.get("/api/v1/consignees/")
    with django_assert_num_queries(by_lot):
        assert len(client.get(f"/api/v1/lots/{lot.lot_number}/recall/").json()["shipments"]) == 2
    with django_assert_num_queries(by_donor):
        assert client.get("/api/v1/donors/DN-0777/recall/").json()["summary"]["vials"] == 8
