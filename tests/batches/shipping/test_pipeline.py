"""The shipment pipeline is declared once (batches.shipping.lifecycle): services, admin steps and API read it."""

import pytest

from batches.shipping import services
from batches.shipping.admin import STEPS_BY_STATUS
from batches.shipping.lifecycle import SHIPMENT_PIPELINE
from batches.shipping.models import ShipmentStatus
from batches.shipping.services.status import shipment_set_status
from cmlims.exceptions import Conflict
from tests.support.builders import sign

pytestmark = pytest.mark.django_db


def test_a_refusal_lists_every_unmet_condition_status_first(world):
    lot = world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_scans(shipment=shipment, scans=[lot.vials.get().serial], actor=world.coordinator)
    services.shipment_pack(shipment=shipment, actor=world.coordinator, shipper_type="insulated_box",
                           coolant="gel_packs")
    with pytest.raises(Conflict) as refused:  # packed, not delivered, and no logger file either
        shipment_set_status(shipment=shipment, to=ShipmentStatus.RECEIVED, actor=world.coordinator, signed=True)
    assert refused.value.code == "invalid_state"
    assert [c["code"] for c in refused.value.extra["conditions"]] == ["shipment_status", "temperature_log_missing"]
    assert refused.value.extra["conditions"][0]["detail"] == (
        "status is packed; confirming receipt needs delivered or receipt_on_hold")
    with pytest.raises(Conflict) as unsigned:
        shipment_set_status(shipment=shipment, to=ShipmentStatus.SHIPPED, actor=world.coordinator)
    assert unsigned.value.code == "signature_required"
    shipment.refresh_from_db()
    assert shipment.status == ShipmentStatus.PACKED
    services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="MedEx", tracking_number="MX1",
                           **sign(world.coordinator, "shipped"))
    services.shipment_deliver(shipment=shipment, actor=world.coordinator)
    with pytest.raises(Conflict) as blocked:
        services.shipment_receive(shipment=shipment, actor=world.coordinator, received_by_name="Ida",
                                  **sign(world.coordinator, "received"))
    assert blocked.value.code == "receipt_blocked"  # the rule's guard, status fine
    assert [c["code"] for c in blocked.value.extra["conditions"]] == ["temperature_log_missing"]


def test_admin_steps_and_api_transitions_are_read_from_the_pipeline(world, auth_client):
    assert STEPS_BY_STATUS == {
        "draft": ("allocate", "release", "pack", "label", "packing-list", "cancel"),
        "packed": ("ship", "label", "packing-list", "cancel"),
        "shipped": ("deliver", "packing-list"),
        "delivered": ("log", "receive", "packing-list"),
        "receipt_on_hold": ("log", "receive", "packing-list"),
        "received": ("packing-list",),
        "cancelled": (),
    }
    shipment = world.shipment()
    body = auth_client(world.coordinator).get(f"/api/v1/shipments/{shipment.pk}/").json()
    assert body["allowed_transitions"] == ["packed", "cancelled"] == SHIPMENT_PIPELINE.allowed_targets("draft")
    assert SHIPMENT_PIPELINE.allowed_targets("delivered") == ["receipt_on_hold", "received"]
