"""Demo shipping data: two consignees and one delivered shipment of the released demo lot with a clean
temperature log (only when that lot exists: it is made by the manufacturing and QC seeders).

Everything goes through the services as the demo shipping coordinator (ship1), so the records carry real
audit entries, custody events and the "shipped" signature. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from batches.models import CMLot, LotStatus, VialStatus
from batches.shipping import services
from batches.shipping.models import Consignee, Shipment
from cmlims.demo import DEMO_PASSWORD

CONSIGNEES = (
    {"name": "Klinik am Hafen — Regenerative Medicine", "kind": Consignee.Kind.CLINIC,
     "address_line1": "Hafenstrasse 12", "postal_code": "20459", "city": "Hamburg", "country": "DE",
     "contact_name": "Dr. Anna Berg", "contact_phone": "+49 40 555 0100",
     "contact_email": "pharmacy@klinik-hafen.example", "licence_number": "DE-HH-2024-117"},
    {"name": "NordMed Distribution GmbH", "kind": Consignee.Kind.DISTRIBUTOR,
     "address_line1": "Logistikpark 3", "postal_code": "24145", "city": "Kiel", "country": "DE",
     "contact_name": "Lars Petersen", "contact_phone": "+49 431 555 0200", "contact_email": "qa@nordmed.example",
     "licence_number": "DE-SH-GDP-0042"},
)
VIALS = 6
LOG_SAMPLES = 97  # 8 h at 5-minute intervals


def _clean_log(end: dt.datetime, low, high) -> bytes:
    """A logger trace that stays inside the range: a gentle wave around the middle of it."""
    middle, half = (low + high) / 2, (high - low) / 2
    start = end - dt.timedelta(minutes=5 * (LOG_SAMPLES - 1))
    wave = (0, 1, 2, 2, 1, 0, -1, -2, -2, -1)
    lines = ["timestamp,temperature_c"]
    for i in range(LOG_SAMPLES):
        temperature = middle + half * wave[i % len(wave)] / 4
        lines.append(f"{(start + dt.timedelta(minutes=5 * i)).isoformat()},{temperature:.1f}")
    return ("\n".join(lines) + "\n").encode()


def seed(users) -> None:
    coordinator = users["ship1"]
    consignees = []
    for values in CONSIGNEES:
        existing = Consignee.objects.filter(name=values["name"]).first()
        consignees.append(existing or services.consignee_create(actor=coordinator, **values))
    if Shipment.objects.filter(consignee=consignees[0]).exists():
        return
    today = timezone.localdate()
    lot = (
        CMLot.objects.filter(status=LotStatus.RELEASED, on_hold=False, voided_at__isnull=True, expiry__gte=today,
                             vials__status=VialStatus.AVAILABLE)
        .select_related("product").order_by("expiry", "pk").first()
    )
    if lot is None:
        return  # no released demo lot: nothing to ship
    available = lot.vials.filter(status=VialStatus.AVAILABLE).count()
    shipment = services.shipment_create(
        consignee=consignees[0], product=lot.product, actor=coordinator, courier="MedExpress Cold Chain",
        notes="Demo shipment: delivered, logger data clean, receipt to be confirmed.",
    )
    services.shipment_allocate_count(shipment=shipment, count=min(VIALS, available), lot_number=lot.lot_number,
                                     actor=coordinator)
    services.shipment_pack(shipment=shipment, actor=coordinator, shipper_type=Shipment.ShipperType.INSULATED_BOX,
                           coolant=Shipment.Coolant.PCM, logger_serial="TT-4Q-880231")
    services.shipment_ship(shipment=shipment, actor=coordinator, username=coordinator.username,
                           password=DEMO_PASSWORD, meaning="shipped", tracking_number="MX-2291-0457",
                           party="driver J. Nowak", reason="pack-out checked against the packing list")
    services.shipment_deliver(shipment=shipment, actor=coordinator, party="K. Jensen, hospital pharmacy")
    shipment.refresh_from_db()
    services.shipment_temperature_log_upload(
        shipment=shipment, actor=coordinator, file_name="TT-4Q-880231.csv",
        data=_clean_log(timezone.now() - dt.timedelta(minutes=1), shipment.transport_temperature_min_c,
                        shipment.transport_temperature_max_c),
    )
