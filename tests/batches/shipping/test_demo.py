"""The shipping demo seeder: two consignees, one delivered shipment with a clean log, one received after a
closed excursion; idempotent."""

import pytest

from batches.shipping import demo
from batches.shipping.models import Consignee, CustodyEvent, Shipment, ShipmentStatus
from cmlims import roles
from cmlims.demo import DEMO_PASSWORD
from cmlims.esign.models import Signature
from cmlims.investigations.models import Kind, Status

pytestmark = pytest.mark.django_db


def test_seed_ships_the_released_lot_and_runs_once(world, make_user):
    ship1 = make_user("demo-ship1", roles.SHIPPING_COORDINATOR, password=DEMO_PASSWORD)
    qc2 = make_user("demo-qc2", roles.QC_OFFICER, password=DEMO_PASSWORD)
    world.lot(vials=1, status="qc_complete")
    released = world.lot(vials=12)
    demo.seed({"ship1": ship1, "qc2": qc2})
    assert Consignee.objects.filter(name__in=[c["name"] for c in demo.CONSIGNEES]).count() == 2
    shipment = Shipment.objects.get(consignee__name=demo.CONSIGNEES[0]["name"])
    assert shipment.status == ShipmentStatus.DELIVERED
    assert {a.vial.lot_id for a in shipment.allocations.select_related("vial")} == {released.pk}
    assert shipment.allocations.count() == demo.VIALS
    log = shipment.temperature_logs.get()
    assert not log.excursion and log.minutes_outside == 0 and log.sample_count == demo.LOG_SAMPLES
    assert list(CustodyEvent.objects.filter(shipment=shipment).values_list("kind", flat=True)) == [
        "packed", "handed_to_courier", "delivered"]
    assert Signature.objects.filter(object_id=str(shipment.pk), meaning="shipped").count() == 1

    # The second story: an excursion held receipt until QC closed its investigation with the product usable.
    after = Shipment.objects.get(consignee__name=demo.CONSIGNEES[1]["name"])
    assert after.status == ShipmentStatus.RECEIVED and after.allocations.count() == demo.EXCURSION_VIALS
    excursion = after.temperature_logs.get()
    assert excursion.excursion and excursion.minutes_outside > after.transport_excursion_allowed_minutes
    investigation = excursion.investigation
    assert investigation.kind == Kind.TEMPERATURE_EXCURSION and investigation.status == Status.CLOSED
    assert investigation.product_disposition == "usable" and investigation.closed_by == qc2
    assert investigation.closed_at < after.received_at
    assert Signature.objects.filter(object_id=str(after.pk), meaning="received").count() == 1

    demo.seed({"ship1": ship1, "qc2": qc2})
    assert Shipment.objects.count() == 2 and Consignee.objects.count() == 3  # world's consignee + 2


def test_seed_without_a_released_lot_ships_nothing(world, make_user):
    ship1 = make_user("demo-ship1", roles.SHIPPING_COORDINATOR, password=DEMO_PASSWORD)
    world.lot(vials=2, status="qc_complete")
    demo.seed({"ship1": ship1})
    assert not Shipment.objects.exists() and Consignee.objects.count() == 3
