"""Shipment services: allocation (rule 4, FEFO, refusals), the status pipeline, custody, signatures."""

import datetime as dt

import pytest
from django.utils import timezone

from batches.models import LotStatus, Vial, VialStatus
from batches.shipping import services
from batches.shipping.gs1 import GS, sscc_is_valid
from batches.shipping.models import CustodyEvent, ShipmentStatus, ShipmentVial
from cmlims import roles
from cmlims.esign.selectors import signatures_of
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD, clean_log, log_with, sign, vial_serials

pytestmark = pytest.mark.django_db


def serials(lot, *numbers):
    return vial_serials(lot, *numbers)


def test_create_assigns_reference_and_valid_sscc_and_copies_the_range(world):
    shipment = world.shipment(courier="DHL")
    assert shipment.reference == f"SHP-{shipment.pk:06d}"
    assert sscc_is_valid(shipment.sscc) and shipment.sscc[1:8] == "9506000"
    assert (shipment.transport_temperature_min_c, shipment.transport_temperature_max_c) == (2, 8)
    assert shipment.transport_excursion_allowed_minutes == 30
    assert shipment.status == ShipmentStatus.DRAFT
    # One honest creation entry that already carries the reference and SSCC (no follow-up "assigned" entry).
    (entry,) = AuditEntry.objects.filter(object_type="shipping.shipment", object_id=str(shipment.pk))
    assert entry.action == "created"
    assert entry.changes["sscc"] == [None, shipment.sscc]
    assert entry.changes["reference"] == [None, shipment.reference]
    shipment.refresh_from_db()
    assert shipment.sscc and shipment.reference == f"SHP-{shipment.pk:06d}"


@pytest.mark.req("P11-11.10g")
def test_only_a_shipping_coordinator_creates_and_allocates(world, make_user):
    qc = make_user("qc1", roles.QC_OFFICER)
    with pytest.raises(PermissionDenied):
        services.shipment_create(consignee=world.consignee, product=world.product, actor=qc)
    shipment = world.shipment()
    lot = world.lot(vials=2)
    with pytest.raises(PermissionDenied):
        services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1), actor=qc)


@pytest.mark.req("FEAT-SCANNER")
def test_allocate_by_serial_and_by_gs1_scan(world):
    lot = world.lot(vials=3)
    shipment = world.shipment()
    s1, s2 = serials(lot, 1, 2)
    scan = f"]d201{world.product.gtin}17{lot.expiry:%y%m%d}10{lot.lot_number}{GS}21{s2}"
    rows = services.shipment_allocate_scans(shipment=shipment, scans=[s1, scan], actor=world.coordinator)
    assert sorted(r.vial.serial for r in rows) == [s1, s2]
    assert set(Vial.objects.filter(serial__in=[s1, s2]).values_list("status", flat=True)) == {VialStatus.ALLOCATED}
    assert ShipmentVial.objects.get(vial__serial=s2).scanned_as == scan


@pytest.mark.req("RULE-4", "1271-265")
def test_allocation_refusals_list_every_vial_and_change_nothing(world):
    good = world.lot(vials=3)
    unreleased = world.lot(vials=1, status=LotStatus.QC_COMPLETE)
    held = world.lot(vials=1, on_hold=True)
    expired = world.lot(vials=1, expiry=timezone.localdate() - dt.timedelta(days=1))
    other_shipment = world.shipment()
    services.shipment_allocate_scans(shipment=other_shipment, scans=serials(good, 3), actor=world.coordinator)
    shipment = world.shipment()
    ok = serials(good, 1)[0]
    wrong_lot_scan = f"(01){world.product.gtin}(10)CM26-9999(21){serials(good, 2)[0]}"
    wrong_gtin_scan = f"(01)09506000134345(21){serials(good, 2)[0]}"
    scans = [ok, serials(unreleased, 1)[0], serials(held, 1)[0], serials(expired, 1)[0], serials(good, 3)[0],
             "NOPE-1", "(01)123", wrong_lot_scan, ok]
    with pytest.raises(Conflict) as caught:
        services.shipment_allocate_scans(shipment=shipment, scans=scans, actor=world.coordinator)
    body = caught.value.as_body()
    assert body["code"] == "vials_refused"
    reasons = {v["serial"]: v["reason"] for v in body["vials"]}
    assert "not released" in reasons[serials(unreleased, 1)[0]]
    assert "on hold" in reasons[serials(held, 1)[0]]
    assert "expired" in reasons[serials(expired, 1)[0]]
    assert "allocated" in reasons[serials(good, 3)[0]] and other_shipment.reference in reasons[serials(good, 3)[0]]
    assert reasons["NOPE-1"] == "no vial with this serial"
    assert "(01)" in reasons["(01)123"]
    assert "does not match" in reasons[serials(good, 2)[0]]
    assert reasons[ok] == "listed 2 times"
    assert not ShipmentVial.objects.filter(shipment=shipment).exists()
    assert Vial.objects.get(serial=ok).status == VialStatus.AVAILABLE
    with pytest.raises(Conflict) as caught:
        services.shipment_allocate_scans(shipment=shipment, scans=[wrong_gtin_scan], actor=world.coordinator)
    assert "GTIN" in caught.value.extra["vials"][0]["reason"]
    wrong_expiry_scan = f"]d201{world.product.gtin}17{good.expiry + dt.timedelta(days=1):%y%m%d}21{ok}"
    with pytest.raises(Conflict) as caught:
        services.shipment_allocate_scans(shipment=shipment, scans=[wrong_expiry_scan], actor=world.coordinator)
    assert "expiry" in caught.value.extra["vials"][0]["reason"]


def test_vial_of_another_product_is_refused(world):
    from tests.support.builders import make_product

    other = make_product(world.lab, name="Other CM", gtin="09506000134345")
    lot = world.lot(vials=1, product=other)
    with pytest.raises(Conflict) as caught:
        services.shipment_allocate_scans(shipment=world.shipment(), scans=serials(lot, 1), actor=world.coordinator)
    assert "another product" in caught.value.extra["vials"][0]["reason"]


def test_fefo_by_count_takes_the_earliest_expiry_first(world):
    late = world.lot(vials=3, expiry=timezone.localdate() + dt.timedelta(days=300))
    early = world.lot(vials=2, expiry=timezone.localdate() + dt.timedelta(days=30))
    world.lot(vials=2, on_hold=True, expiry=timezone.localdate() + dt.timedelta(days=5))  # earlier but held
    world.lot(vials=2, expiry=timezone.localdate() - dt.timedelta(days=1))  # expired
    shipment = world.shipment()
    rows = services.shipment_allocate_count(shipment=shipment, count=3, actor=world.coordinator)
    assert [r.vial.serial for r in rows] == serials(early, 1, 2) + serials(late, 1)


def test_count_from_one_lot_and_its_refusals(world):
    lot = world.lot(vials=3)
    held = world.lot(vials=3, on_hold=True)
    shipment = world.shipment()
    rows = services.shipment_allocate_count(shipment=shipment, count=2, lot_number=lot.lot_number,
                                            actor=world.coordinator)
    assert [r.vial.serial for r in rows] == serials(lot, 1, 2)
    with pytest.raises(Conflict) as caught:
        services.shipment_allocate_count(shipment=shipment, count=2, lot_number=lot.lot_number,
                                         actor=world.coordinator)
    assert caught.value.code == "not_enough_vials"
    with pytest.raises(Conflict) as caught:
        services.shipment_allocate_count(shipment=shipment, count=1, lot_number=held.lot_number,
                                         actor=world.coordinator)
    assert [c["code"] for c in caught.value.extra["conditions"]] == ["lot_on_hold"]
    with pytest.raises(InvalidInput) as caught:
        services.shipment_allocate_count(shipment=shipment, count=1, lot_number="CM99-0001", actor=world.coordinator)
    assert "lot" in caught.value.extra["fields"]
    for bad in (0, -1, "3", True, 10**6):
        with pytest.raises(InvalidInput):
            services.shipment_allocate_count(shipment=shipment, count=bad, actor=world.coordinator)


def test_release_vials_back_while_draft(world):
    lot = world.lot(vials=3)
    shipment = world.shipment()
    services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1, 2, 3), actor=world.coordinator)
    with pytest.raises(Conflict) as caught:
        services.shipment_release_vials(shipment=shipment, scans=["S99900001"], actor=world.coordinator)
    assert caught.value.extra["vials"][0]["reason"].startswith("not in")
    released = services.shipment_release_vials(shipment=shipment, scans=serials(lot, 2), actor=world.coordinator,
                                               reason="customer ordered two")
    assert [a.vial.serial for a in released] == serials(lot, 2)
    assert Vial.objects.get(serial=serials(lot, 2)[0]).status == VialStatus.AVAILABLE
    assert ShipmentVial.objects.get(vial__serial=serials(lot, 2)[0]).release_reason == "customer ordered two"
    # the vial can go into another shipment now: the released allocation row stays as history
    services.shipment_allocate_scans(shipment=world.shipment(), scans=serials(lot, 2), actor=world.coordinator)
    assert ShipmentVial.objects.filter(vial__serial=serials(lot, 2)[0]).count() == 2


def pack(world, shipment):
    return services.shipment_pack(shipment=shipment, actor=world.coordinator, shipper_type="insulated_box",
                                  coolant="gel_packs", logger_serial="LOG-1")


def ship(world, shipment, **kwargs):
    return services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="MedEx",
                                  tracking_number="MX123", **sign(world.coordinator, "shipped"), **kwargs)


def receive(world, shipment, reason="", **kwargs):
    return services.shipment_receive(shipment=shipment, actor=world.coordinator, received_by_name="Nurse Ida",
                                     **sign(world.coordinator, "received", reason), **kwargs)


@pytest.mark.req("FEAT-SHIPPING", "P11-11.10f")
def test_full_pipeline_with_custody_and_signatures(world):
    lot = world.lot(vials=2)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=2, actor=world.coordinator)
    pack(world, shipment)
    shipped = ship(world, shipment, party="Driver Joe")
    assert shipped.status == ShipmentStatus.SHIPPED
    assert set(lot.vials.values_list("status", flat=True)) == {VialStatus.SHIPPED}
    services.shipment_deliver(shipment=shipment, actor=world.coordinator, party="Reception desk")
    start = timezone.now() - dt.timedelta(hours=2)
    services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="log.csv",
                                             data=clean_log(start))
    received = receive(world, shipment)
    assert received.status == ShipmentStatus.RECEIVED and received.received_by_name == "Nurse Ida"
    assert set(lot.vials.values_list("status", flat=True)) == {VialStatus.RECEIVED}
    events = list(CustodyEvent.objects.filter(shipment=shipment).order_by("occurred_at", "id"))
    assert [e.kind for e in events] == ["packed", "handed_to_courier", "delivered", "received"]
    assert all(e.recorded_by == world.coordinator for e in events)
    assert events[1].party == "Driver Joe" and events[3].party == "Nurse Ida"
    signatures = signatures_of(shipment)
    assert [s.meaning for s in signatures] == ["shipped", "received"]
    assert events[1].signature == signatures[0] and events[3].signature == signatures[1]
    assert signatures[0].content["vials"] == sorted(serials(lot, 1, 2))
    assert signatures[0].printed_name == "Sam Shipper"


@pytest.mark.req("P11-11.10f")
def test_status_refusals(world):
    lot = world.lot(vials=2)
    shipment = world.shipment()
    with pytest.raises(Conflict) as caught:
        pack(world, shipment)  # no vials
    assert {c["code"] for c in caught.value.extra["conditions"]} == {"no_vials"}
    with pytest.raises(Conflict):
        ship(world, shipment)  # not packed
    services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1), actor=world.coordinator)
    with pytest.raises(Conflict) as caught:
        services.shipment_pack(shipment=shipment, actor=world.coordinator)
    assert {c["code"] for c in caught.value.extra["conditions"]} == {"pack_out_missing"}
    pack(world, shipment)
    for call in (
        lambda: services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 2), actor=world.coordinator),
        lambda: services.shipment_release_vials(shipment=shipment, actor=world.coordinator),
        lambda: services.shipment_update(shipment=shipment, actor=world.coordinator, courier="X"),
        lambda: services.shipment_deliver(shipment=shipment, actor=world.coordinator),
        lambda: receive(world, shipment),
    ):
        with pytest.raises(Conflict) as caught:
            call()
        assert caught.value.extra["conditions"][0]["code"] == "shipment_status"


@pytest.mark.req("RULE-4")
def test_ship_rechecks_rule_4_and_needs_a_courier(world):
    lot = world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1), actor=world.coordinator)
    pack(world, shipment)
    with pytest.raises(InvalidInput) as caught:
        services.shipment_ship(shipment=shipment, actor=world.coordinator, **sign(world.coordinator, "shipped"))
    assert set(caught.value.extra["fields"]) == {"courier", "tracking_number"}
    from qc.services.hold import lot_hold

    lot_hold(lot=lot, actor=world.qc, reason="deviation DV-2")  # through the lot pipeline, as a QC officer does
    with pytest.raises(Conflict) as caught:
        ship(world, shipment)
    assert "on hold" in caught.value.extra["vials"][0]["reason"]
    assert not signatures_of(shipment).exists()


def test_signature_refusals(world):
    lot = world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1), actor=world.coordinator)
    pack(world, shipment)
    with pytest.raises(InvalidInput) as caught:
        services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="C", tracking_number="T",
                               **sign(world.coordinator, "received"))
    assert "meaning" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput) as caught:
        services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="C", tracking_number="T",
                               username=world.coordinator.username, password="wrong", meaning="shipped")
    assert "password" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput) as caught:
        services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="C", tracking_number="T",
                               username="someone-else", password=PASSWORD, meaning="shipped")
    assert "username" in caught.value.extra["fields"]
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.PACKED


def test_cancel_returns_vials_and_needs_a_reason(world):
    lot = world.lot(vials=2)
    shipment = world.shipment()
    services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1, 2), actor=world.coordinator)
    pack(world, shipment)
    with pytest.raises(InvalidInput):
        services.shipment_cancel(shipment=shipment, actor=world.coordinator, reason=" ")
    cancelled = services.shipment_cancel(shipment=shipment, actor=world.coordinator, reason="clinic postponed")
    assert cancelled.status == ShipmentStatus.CANCELLED and cancelled.cancel_reason == "clinic postponed"
    assert set(lot.vials.values_list("status", flat=True)) == {VialStatus.AVAILABLE}
    with pytest.raises(Conflict):
        services.shipment_cancel(shipment=shipment, actor=world.coordinator, reason="again")


def test_shipped_shipment_cannot_be_cancelled(world):
    world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    pack(world, shipment)
    ship(world, shipment)
    with pytest.raises(Conflict) as caught:
        services.shipment_cancel(shipment=shipment, actor=world.coordinator, reason="oops")
    assert "left the site" in caught.value.message


def delivered(world):
    world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    pack(world, shipment)
    ship(world, shipment)
    return services.shipment_deliver(shipment=shipment, actor=world.coordinator)


def test_receipt_needs_the_logger_file(world):
    shipment = delivered(world)
    with pytest.raises(Conflict) as caught:
        receive(world, shipment)
    assert [c["code"] for c in caught.value.extra["conditions"]] == ["temperature_log_missing"]


@pytest.mark.req("RULE-6")
def test_exactly_allowed_minutes_outside_is_not_an_excursion(world):
    shipment = delivered(world)
    start = timezone.now() - dt.timedelta(hours=3)
    temperatures = ["5"] * 3 + ["9"] * 5 + ["5"] * 3  # 6 segments x 5 min = 30 = allowed
    log = services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="a.csv",
                                                   data=log_with(start, temperatures))
    assert log.minutes_outside == 30 and not log.excursion and log.investigation is None
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.DELIVERED
    assert receive(world, shipment).status == ShipmentStatus.RECEIVED


@pytest.mark.req("RULE-6", "README-EXCURSION-RECEIPT")
def test_one_sample_over_opens_an_investigation_and_holds_receipt(world, make_user):
    from cmlims.investigations.services import investigation_close

    shipment = delivered(world)
    start = timezone.now() - dt.timedelta(hours=3)
    temperatures = ["5"] * 3 + ["9"] * 6 + ["5"] * 3  # 35 min
    log = services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="b.csv",
                                                   data=log_with(start, temperatures))
    assert log.minutes_outside == 35 and log.excursion
    investigation = log.investigation
    assert investigation.kind == "temperature_excursion" and investigation.subject == shipment
    assert log.readings.count() == 12
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.RECEIPT_ON_HOLD
    with pytest.raises(Conflict) as caught:
        receive(world, shipment)
    assert [c["code"] for c in caught.value.extra["conditions"]] == ["excursion_investigation_open"]
    investigation_close(investigation=investigation, actor=make_user("qc1", roles.QC_OFFICER),
                        conclusion="stability data cover 35 min at 9 °C; product acceptable",
                        product_disposition="usable")
    assert receive(world, shipment, reason="excursion assessed, INV closed").status == ShipmentStatus.RECEIVED


@pytest.mark.req("README-EXCURSION-RECEIPT")
def test_receipt_is_refused_when_the_excursion_investigation_finds_the_product_not_usable(world, make_user):
    from cmlims.investigations.services import investigation_close

    shipment = delivered(world)
    start = timezone.now() - dt.timedelta(hours=3)
    log = services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="hot.csv",
                                                   data=log_with(start, ["5"] + ["15"] * 10 + ["5"]))
    investigation_close(investigation=log.investigation, actor=make_user("qc1", roles.QC_OFFICER),
                        conclusion="55 min at 15 °C exceeds the stability data; destroy",
                        product_disposition="not_usable")
    with pytest.raises(Conflict) as caught:
        receive(world, shipment, reason="consignee wants it")
    assert [c["code"] for c in caught.value.extra["conditions"]] == ["excursion_product_not_usable"]
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.RECEIPT_ON_HOLD and shipment.received_at is None
    assert set(shipment.allocations.values_list("vial__status", flat=True)) == {VialStatus.SHIPPED}
    assert not shipment.custody_events.filter(kind="received").exists()


@pytest.mark.req("FEAT-COLD-CHAIN")
def test_bad_logger_file_stores_nothing_and_replacement_needs_a_reason(world, make_user):
    shipment = delivered(world)
    with pytest.raises(InvalidInput) as caught:
        services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="bad.csv",
                                                 data=b"timestamp,temperature_c\n2026-01-01T00:00:00,x\n")
    assert {r["column"] for r in caught.value.extra["rows"]} == {"timestamp", "temperature_c"}
    assert not shipment.temperature_logs.exists()
    start = timezone.now() - dt.timedelta(hours=3)
    first = services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="1.csv",
                                                     data=clean_log(start))
    with pytest.raises(InvalidInput) as caught:
        services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="2.csv",
                                                 data=clean_log(start, samples=20))
    assert "reason" in caught.value.extra["fields"]
    qc = make_user("qc1", roles.QC_OFFICER)
    second = services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator,
                                                      file_name="2.csv", data=clean_log(start, samples=20),
                                                      reason="first export was truncated", qc_username=qc.username,
                                                      qc_password=PASSWORD)
    first.refresh_from_db()
    assert first.voided_at is not None and second.sample_count == 20


def _delivered_with_excursion(world):
    """A delivered shipment whose logger file shows 55 min at 15 °C (an excursion; its investigation open)."""
    shipment = delivered(world)
    start = timezone.now() - dt.timedelta(hours=3)
    hot = services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="hot.csv",
                                                   data=log_with(start, ["5"] + ["15"] * 10 + ["5"]))
    return shipment, start, hot


def _replace(world, shipment, start, **signature):
    return services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="clean.csv",
                                                    data=clean_log(start, samples=20),
                                                    reason="logger re-exported", **signature)


@pytest.mark.req("RULE-6", "P11-11.200a", "RULE-2")
def test_replacing_a_logger_file_needs_a_qc_officers_own_signature(world, make_user):
    shipment, start, hot = _delivered_with_excursion(world)
    qc = make_user("qc1", roles.QC_OFFICER)
    lab = make_user("lab7", roles.LAB_STAFF)
    with pytest.raises(InvalidInput) as caught:
        _replace(world, shipment, start)
    assert "qc_username" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput) as caught:
        _replace(world, shipment, start, qc_username=qc.username, qc_password="wrong")
    assert "password" in caught.value.extra["fields"]
    with pytest.raises(PermissionDenied):
        _replace(world, shipment, start, qc_username=lab.username, qc_password=PASSWORD)
    both = make_user("ship-qc", roles.SHIPPING_COORDINATOR, roles.QC_OFFICER)
    with pytest.raises(InvalidInput) as caught:  # nobody signs for their own upload
        services.shipment_temperature_log_upload(shipment=shipment, actor=both, file_name="clean.csv",
                                                 data=clean_log(start), reason="re-exported",
                                                 qc_username=both.username, qc_password=PASSWORD)
    assert "qc_username" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput) as caught:
        _replace(world, shipment, start, qc_username=qc.username, qc_password=PASSWORD, qc_meaning="received")
    assert "meaning" in caught.value.extra["fields"]
    hot.refresh_from_db()
    assert hot.voided_at is None and shipment.temperature_logs.count() == 1
    # The wrong password and the meaning not confirmed: each a recorded failed attempt.
    assert AuditEntry.objects.filter(action="signature_failed", user=qc).count() == 2

    new = _replace(world, shipment, start, qc_username=qc.username, qc_password=PASSWORD)
    [signature] = signatures_of(new)
    assert (signature.signer, signature.meaning) == (qc, "logger file replaced")
    assert signature.content["replaces_sha256"] == [hot.file_sha256]


@pytest.mark.req("RULE-6", "README-EXCURSION-RECEIPT")
def test_a_replaced_file_does_not_hide_an_investigation_closed_not_usable(world, make_user):
    from cmlims.investigations.services import investigation_close

    shipment, start, hot = _delivered_with_excursion(world)
    qc = make_user("qc1", roles.QC_OFFICER)
    _replace(world, shipment, start, qc_username=qc.username, qc_password=PASSWORD)
    hot.refresh_from_db()
    assert hot.voided_at is not None
    with pytest.raises(Conflict) as caught:
        receive(world, shipment)
    assert [c["code"] for c in caught.value.extra["conditions"]] == ["excursion_investigation_open"]
    investigation_close(investigation=hot.investigation, actor=qc, conclusion="55 min at 15 °C; destroy",
                        product_disposition="not_usable")
    with pytest.raises(Conflict) as caught:
        receive(world, shipment, reason="consignee wants it")
    assert [c["code"] for c in caught.value.extra["conditions"]] == ["excursion_product_not_usable"]
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.RECEIPT_ON_HOLD and shipment.received_at is None


def test_logger_upload_before_delivery_is_refused(world):
    world.lot(vials=1)
    shipment = world.shipment()
    with pytest.raises(Conflict):
        services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="x.csv",
                                                 data=clean_log(timezone.now() - dt.timedelta(hours=1)))


def test_consignee_and_draft_update_refusals(world):
    with pytest.raises(InvalidInput) as caught:
        services.consignee_create(actor=world.coordinator, name="Bad", address_line1="a", city="b", country="Germany",
                                  contact_name="c")
    assert "country" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput) as caught:
        services.consignee_create(actor=world.coordinator, name="X", address_line1="a", city="b", country="DE",
                                  contact_name="c", voided_at=timezone.now())
    assert "voided_at" in caught.value.extra["fields"]
    shipment = world.shipment()
    with pytest.raises(InvalidInput) as caught:
        services.shipment_update(shipment=shipment, actor=world.coordinator, status="received")
    assert "status" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput) as caught:
        services.shipment_update(shipment=shipment, actor=world.coordinator, coolant="liquid helium")
    assert "coolant" in caught.value.extra["fields"]
    services.consignee_void(consignee=world.consignee, actor=world.coordinator, reason="clinic closed")
    with pytest.raises(InvalidInput) as caught:
        world.shipment()
    assert "consignee" in caught.value.extra["fields"]
    with pytest.raises(Conflict):
        services.consignee_update(consignee=world.consignee, actor=world.coordinator, city="Kiel")
    with pytest.raises(InvalidInput) as caught:
        services.shipment_create(consignee="abc", product=world.product, actor=world.coordinator)
    assert "consignee" in caught.value.extra["fields"]


@pytest.mark.req("P11-11.10e", "RULE-8")
def test_every_change_is_audited(world):
    from cmlims.models import AuditEntry

    lot = world.lot(vials=2)
    shipment = world.shipment()
    before = AuditEntry.objects.count()
    services.shipment_allocate_scans(shipment=shipment, scans=serials(lot, 1, 2), actor=world.coordinator)
    entries = AuditEntry.objects.filter(sequence__gt=before)
    assert entries.filter(object_type="shipping.shipmentvial", action="created").count() == 2
    assert entries.filter(object_type="batches.vial", action="changed").count() == 2
    assert set(entries.values_list("username", flat=True)) == {"ship1"}


@pytest.mark.req("FEAT-ADM-PACKOUT")
def test_pack_and_ship_keep_what_was_entered_at_creation(world):
    """A step given blanks (an untouched form field) keeps the recorded coolant, logger and courier."""
    world.lot(vials=1)
    shipment = world.shipment(shipper_type="dry_shipper", coolant="dry_ice", logger_serial="LOG-77",
                              courier="MedEx", tracking_number="MX-9")
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    packed = services.shipment_pack(shipment=shipment, actor=world.coordinator, shipper_type="", coolant="",
                                    logger_serial="")
    assert (packed.shipper_type, packed.coolant, packed.logger_serial) == ("dry_shipper", "dry_ice", "LOG-77")
    shipped = services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="", tracking_number=" ",
                                     **sign(world.coordinator, "shipped"))
    assert (shipped.courier, shipped.tracking_number) == ("MedEx", "MX-9")
    shipped.refresh_from_db()
    assert (shipped.coolant, shipped.logger_serial, shipped.courier) == ("dry_ice", "LOG-77", "MedEx")
