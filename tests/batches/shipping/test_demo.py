"""The shipping demo seeder: two consignees, one delivered shipment with a clean log; idempotent."""

import pytest

from batches.shipping import demo
from batches.shipping.models import Consignee, CustodyEvent, Shipment, ShipmentStatus
from cmlims import roles
from cmlims.demo import DEMO_PASSWORD
from cmlims.esign.models import Signature

pytestmark = pytest.mark.django_db


def test_seed_ships_the_released_lot_and_runs_once(world, make_user):
    ship1 = make_user("demo-ship1", roles.SHIPPING_COORDINATOR, password=DEMO_PASSWORD)
    world.lot(vials=1, status="qc_complete")
    released = world.lot(vials=8)
    demo.seed({"ship1": ship1})
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
    demo.seed({"ship1": ship1})
    assert Shipment.objects.count() == 1 and Consignee.objects.count() == 3  # world's consignee + 2


def test_seed_without_a_released_lot_ships_nothing(world, make_user):
    ship1 = make_user("demo-ship1", roles.SHIPPING_COORDINATOR, password=DEMO_PASSWORD)
    world.lot(vials=2, status="qc_complete")
    demo.seed({"ship1": ship1})
    assert not Shipment.objects.exists() and Consignee.objects.count() == 3
