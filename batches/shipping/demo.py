"""Demo shipping data: two consignees; one delivered shipment of the released demo lot with a clean
temperature log (receipt to be confirmed), and one received after a temperature excursion whose investigation
QC closed with the product usable (only when that lot exists: it is made by the manufacturing and QC seeders).

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


def _clean_log(end: dt.datetime, low, high, *, warm_samples: range = range(0)) -> bytes:
    """A logger trace that stays inside the range (a gentle wave around its middle), except the
    ``warm_samples``, which sit 2 degrees above it (an excursion when they outlast the allowed minutes)."""
    middle, half = (low + high) / 2, (high - low) / 2
    start = end - dt.timedelta(minutes=5 * (LOG_SAMPLES - 1))
    wave = (0, 1, 2, 2, 1, 0, -1, -2, -2, -1)
    lines = ["timestamp,temperature_c"]
    for i in range(LOG_SAMPLES):
        temperature = high + 2 if i in warm_samples else middle + half * wave[i % len(wave)] / 4
        lines.append(f"{(start + dt.timedelta(minutes=5 * i)).isoformat()},{temperature:.1f}")
    return ("\n".join(lines) + "\n").encode()


EXCURSION_VIALS = 4


def _delivered_with_log(lot, consignee, coordinator, *, count: int, logger: str, tracking: str, received_by: str,
                        notes: str, warm_samples: range = range(0)):
    """A shipment of ``count`` vials of ``lot`` packed, shipped (signed), delivered and its logger file uploaded."""
    shipment = services.shipment_create(consignee=consignee, product=lot.product, actor=coordinator,
                                        courier="MedExpress Cold Chain", notes=notes)
    services.shipment_allocate_count(shipment=shipment, count=count, lot_number=lot.lot_number, actor=coordinator)
    services.shipment_pack(shipment=shipment, actor=coordinator, shipper_type=Shipment.ShipperType.INSULATED_BOX,
                           coolant=Shipment.Coolant.PCM, logger_serial=logger)
    services.shipment_ship(shipment=shipment, actor=coordinator, username=coordinator.username,
                           password=DEMO_PASSWORD, meaning="shipped", tracking_number=tracking,
                           party="driver J. Nowak", reason="pack-out checked against the packing list")
    services.shipment_deliver(shipment=shipment, actor=coordinator, party=received_by)
    shipment.refresh_from_db()
    log = services.shipment_temperature_log_upload(
        shipment=shipment, actor=coordinator, file_name=f"{logger}.csv",
        data=_clean_log(timezone.now() - dt.timedelta(minutes=1), shipment.transport_temperature_min_c,
                        shipment.transport_temperature_max_c, warm_samples=warm_samples),
    )
    return shipment, log


def _received_after_closed_excursion(lot, consignee, users) -> None:
    """A shipment whose logger shows a warm hour at a transfer hub: the excursion holds receipt, QC (qc2)
    closes the investigation with the product usable, then ship1 confirms receipt with a signature."""
    from cmlims.investigations.services import investigation_close

    coordinator, qc = users["ship1"], users.get("qc2")
    if qc is None or lot.vials.filter(status=VialStatus.AVAILABLE).count() < EXCURSION_VIALS:
        return
    shipment, log = _delivered_with_log(
        lot, consignee, coordinator, count=EXCURSION_VIALS, logger="TT-4Q-880517", tracking="MX-2291-0611",
        received_by="L. Petersen, goods-in", warm_samples=range(40, 53),
        notes="Demo shipment: excursion at the hub, investigated, received.")
    investigation_close(investigation=log.investigation, actor=qc, product_disposition="usable",
                        root_cause="pallet left on the hub's dock for an hour during a transfer",
                        conclusion="60 min at up to 10 C; stability data cover 72 h at 25 C: product usable")
    services.shipment_receive(shipment=shipment, actor=coordinator, username=coordinator.username,
                              password=DEMO_PASSWORD, meaning="received", received_by_name="Lars Petersen",
                              reason="received after the excursion investigation concluded: product usable")


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
    _delivered_with_log(lot, consignees[0], coordinator, count=min(VIALS, available), logger="TT-4Q-880231",
                        tracking="MX-2291-0457", received_by="K. Jensen, hospital pharmacy",
                        notes="Demo shipment: delivered, logger data clean, receipt to be confirmed.")
    _received_after_closed_excursion(lot, consignees[1], users)
