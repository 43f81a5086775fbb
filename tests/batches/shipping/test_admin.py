"""The shipping coordinator's admin: build by scanning, steps through the services, recall page, list queries."""

import datetime as dt
import re

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.shipping import services
from batches.shipping.gs1 import GS
from batches.shipping.models import Shipment, ShipmentStatus
from tests.support.builders import PASSWORD, clean_log

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/shipping/shipment/"


def step(client, shipment, name, data):
    return client.post(f"{CHANGELIST}{shipment.pk}/step/{name}/", data)


def messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def admin_client(client, world):
    client.force_login(world.coordinator)
    return client


def test_changelist_has_no_per_row_queries(admin_client, world, django_assert_num_queries):
    lot = world.lot(vials=10)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=2, actor=world.coordinator)
    with CaptureQueriesContext(connection) as one:
        assert admin_client.get(CHANGELIST).status_code == 200
    for _ in range(4):
        services.shipment_allocate_count(shipment=world.shipment(), count=2, actor=world.coordinator)
    with django_assert_num_queries(len(one)):
        response = admin_client.get(CHANGELIST)
    assert response.content.count(b"SHP-") >= 5
    assert lot.vials.filter(status="allocated").count() == 10


def test_create_in_the_admin_goes_through_the_service(admin_client, world):
    response = admin_client.post(f"{CHANGELIST}add/", {
        "consignee": world.consignee.pk, "product": world.product.pk, "courier": "MedEx", "tracking_number": "",
        "shipper_type": "", "coolant": "", "logger_serial": "", "notes": "",
    })
    assert response.status_code == 302, response.content[:2000]
    shipment = Shipment.objects.get()
    assert shipment.sscc and shipment.reference and shipment.created_by == world.coordinator
    (added,) = messages(response)
    assert shipment.reference in added and f"shipment {shipment.pk}" not in added


@pytest.mark.req("FEAT-SHIPPING", "FEAT-SCANNER")
def test_build_by_scanning_then_ship_and_receive_through_the_step_pages(admin_client, world):
    lot = world.lot(vials=3)
    shipment = world.shipment()
    serials = [v.serial for v in lot.vials.order_by("sequence")]
    scan = f"]d201{world.product.gtin}17{lot.expiry:%y%m%d}10{lot.lot_number}{GS}21{serials[0]}"
    page = admin_client.get(f"{CHANGELIST}{shipment.pk}/step/allocate/")
    assert page.status_code == 200 and b"Scan each vial" in page.content
    response = step(admin_client, shipment, "allocate", {"scans": f"{scan}\r\n{serials[1]}\r\nNOPE\r\n"})
    assert response.status_code == 200 and b"NOPE: no vial with this serial" in response.content
    response = step(admin_client, shipment, "allocate", {"scans": f"{scan}\r\n{serials[1]}\r\n"})
    assert response.status_code == 302 and any("2 vial(s) allocated" in m for m in messages(response))
    response = step(admin_client, shipment, "allocate", {"lot": lot.lot_number, "count": "1"})
    assert response.status_code == 302
    assert step(admin_client, shipment, "pack", {"shipper_type": "insulated_box", "coolant": "gel_packs"}
                ).status_code == 302
    detail = admin_client.get(f"{CHANGELIST}{shipment.pk}/change/")
    assert b"Hand to courier" in detail.content and serials[2].encode() in detail.content
    wrong = step(admin_client, shipment, "ship", {"courier": "MedEx", "tracking_number": "MX1", "username": "ship1",
                                                  "password": "bad"})
    assert wrong.status_code == 200 and b"wrong password" in wrong.content
    response = step(admin_client, shipment, "ship", {"courier": "MedEx", "tracking_number": "MX1",
                                                     "username": "ship1", "password": PASSWORD})
    assert response.status_code == 302
    assert step(admin_client, shipment, "deliver", {"party": "front desk"}).status_code == 302
    upload = SimpleUploadedFile("log.csv", clean_log(timezone.now() - dt.timedelta(hours=2)), "text/csv")
    response = step(admin_client, shipment, "log", {"file": upload})
    assert response.status_code == 302 and any("0.00 min outside" in m for m in messages(response))
    chart = admin_client.get(f"{CHANGELIST}{shipment.pk}/chart.png")
    assert chart.status_code == 200 and chart.content[:4] == b"\x89PNG"
    response = step(admin_client, shipment, "receive", {"received_by_name": "Nurse Ida", "username": "ship1",
                                                        "password": PASSWORD})
    assert response.status_code == 302
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.RECEIVED


def test_label_step_queues_a_job(admin_client, world):
    world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    response = step(admin_client, shipment, "label", {"format": "pdf", "copies": "1"})
    assert response.status_code == 302 and "/admin/documents/documentjob/" in response["Location"]


@pytest.mark.req("FEAT-RECALL", "RULE-9")
def test_recall_page_and_csv(admin_client, world):
    lot = world.lot(vials=2)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    page = admin_client.get(f"{CHANGELIST}recall/", {"lot": lot.lot_number})
    assert page.status_code == 200
    assert shipment.reference.encode() in page.content and b"on site" in page.content
    assert b"Klinik Nord" in page.content
    export = admin_client.get(f"{CHANGELIST}recall/", {"lot": lot.lot_number, "export": "csv"})
    assert export["Content-Type"].startswith("text/csv") and export.content.count(b"\r\n") == 3
    missing = admin_client.get(f"{CHANGELIST}recall/", {"donor": "NOBODY"})
    assert b"does not exist" in missing.content


@pytest.mark.req("FEAT-ADM-PACKOUT")
def test_pack_and_courier_pages_start_with_what_was_entered(admin_client, world):
    """The pack page shows the coolant and logger entered at creation and posting it as shown keeps them; the
    courier page does not ask again for the courier and tracking number."""
    world.lot(vials=1)
    shipment = world.shipment(shipper_type="dry_shipper", coolant="dry_ice", logger_serial="LOG-77",
                              courier="MedEx", tracking_number="MX-9")
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    page = admin_client.get(f"{CHANGELIST}{shipment.pk}/step/pack/")
    form = page.context["form"]
    assert (form["coolant"].value(), form["logger_serial"].value()) == ("dry_ice", "LOG-77")
    assert b'<option value="dry_ice" selected>' in page.content
    response = step(admin_client, shipment, "pack", {"shipper_type": "", "coolant": "", "logger_serial": "",
                                                     "notes": ""})
    assert response.status_code == 302, response.content[:3000]
    shipment.refresh_from_db()
    assert (shipment.status, shipment.coolant, shipment.logger_serial) == ("packed", "dry_ice", "LOG-77")
    page = admin_client.get(f"{CHANGELIST}{shipment.pk}/step/ship/")
    assert page.context["form"]["courier"].value() == "MedEx"
    response = step(admin_client, shipment, "ship", {"courier": "", "tracking_number": "", "party": "",
                                                     "username": world.coordinator.username, "password": PASSWORD,
                                                     "reason": ""})
    assert response.status_code == 302, response.content[:3000]
    shipment.refresh_from_db()
    assert (shipment.status, shipment.courier, shipment.tracking_number) == ("shipped", "MedEx", "MX-9")


@pytest.mark.req("FEAT-SHIPPING")
def test_a_refused_step_says_what_is_missing_in_words_not_codes(admin_client, world):
    shipment = world.shipment()  # no vials yet
    response = step(admin_client, shipment, "pack", {"shipper_type": "insulated_box", "coolant": "gel_packs"})
    assert response.status_code == 200
    errors = re.findall(r'<ul class="errorlist">(.*?)</ul>', response.content.decode(), re.S)
    text = re.sub(r"<[^>]+>", " ", " ".join(errors))
    assert text.strip(), "the refusal is shown on the form"
    assert not re.search(r"\b[a-z]+_[a-z_]+:", text), text  # no "pack_out_missing: …" style codes


@pytest.mark.req("FEAT-SHIPPING")
def test_a_signed_step_starts_with_the_signers_user_name(admin_client, world, make_user):
    from django.test import Client

    from cmlims import roles

    shipment = world.shipment()
    coordinator = make_user("ship7", roles.SHIPPING_COORDINATOR, is_staff=True)
    client = Client()
    client.force_login(coordinator)
    page = client.get(f"{CHANGELIST}{shipment.pk}/step/ship/").content.decode()
    assert re.search(r'name="username"[^>]*value="ship7"', page) or re.search(r'value="ship7"[^>]*name="username"',
                                                                              page)
