"""Originals kept and checked (issue 13 item 9): a temperature logger file is stored as uploaded, its SHA-256
in the audit entry, the upload's answer names the stored file, and verify_audit names it once changed."""

import datetime as dt
import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from batches.shipping import services
from batches.shipping.models import TemperatureLog
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from tests.support.builders import clean_log, sign

pytestmark = pytest.mark.django_db


def delivered(world):
    world.lot(vials=1)
    shipment = world.shipment()
    services.shipment_allocate_count(shipment=shipment, count=1, actor=world.coordinator)
    services.shipment_pack(shipment=shipment, actor=world.coordinator, shipper_type="insulated_box",
                           coolant="gel_packs", logger_serial="LOG-1")
    services.shipment_ship(shipment=shipment, actor=world.coordinator, courier="MedEx", tracking_number="MX123",
                           **sign(world.coordinator, "shipped"))
    return services.shipment_deliver(shipment=shipment, actor=world.coordinator)


@pytest.mark.req("INTEG-ORIGINALS-KEPT", "A11-8.2")
def test_logger_file_is_kept_as_uploaded_and_verify_audit_names_a_changed_one(world, auth_client):
    shipment = delivered(world)
    data = clean_log(timezone.now() - dt.timedelta(hours=3))
    response = auth_client(world.coordinator).post(f"/api/v1/shipments/{shipment.pk}/temperature-log/", {
        "file": SimpleUploadedFile("T-4411.csv", data, content_type="text/csv")}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    log = TemperatureLog.objects.get(pk=body["id"])
    assert body["stored_as"] == log.original.name and log.original.name.endswith(".csv")
    assert body["file_sha256"] == hashlib.sha256(data).hexdigest()
    with log.original.open("rb") as handle:
        assert handle.read() == data
    created = AuditEntry.objects.get(object_type="shipping.temperaturelog", object_id=str(log.pk), action="created")
    assert created.changes["file_sha256"][1] == body["file_sha256"]
    assert audit_chain_verify().file_problems == []

    with log.original.storage.open(log.original.name, "wb") as handle:
        handle.write(data.replace(b"5.0", b"4.0"))
    assert [(p.source, p.object_id, p.kind) for p in audit_chain_verify().file_problems] == [
        ("shipping.TemperatureLog", str(log.pk), "changed")]
