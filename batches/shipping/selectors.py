"""Reads of the shipping app: shipment lists and details in constant queries, and the recall (rule 9).

Recall: from a lot, or from a donor (every lot whose harvests came from that donor's cell banks),
list EVERY vial of those lots — in stock or not — with the shipment that holds it and its consignee.
Vials still on site are part of the answer because they must be quarantined too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet

from batches.models import CellSource, CMLot, Vial
from batches.shipping.exports import csv_render
from batches.shipping.models import (
    Consignee,
    CustodyEvent,
    Shipment,
    ShipmentStatus,
    ShipmentVial,
    TemperatureLog,
    TemperatureReading,
)
from batches.shipping.temperature import Reading
from cmlims.esign.models import Signature
from cmlims.exceptions import NotFound

LIVE = Q(allocations__released_at__isnull=True)


def consignee_list() -> QuerySet[Consignee]:
    return Consignee.objects.filter(voided_at__isnull=True).order_by("name", "id")


def consignee_get(pk: int) -> Consignee:
    consignee = Consignee.objects.filter(pk=pk).first()
    if consignee is None:
        raise NotFound(f"consignee {pk} does not exist")
    return consignee


def shipment_list() -> QuerySet[Shipment]:
    """Shipments, newest first, with consignee, product and live vial count (one query per page)."""
    return (
        Shipment.objects.select_related("consignee", "product")
        .annotate(vial_count=Count("allocations", filter=LIVE))
        .order_by("-id")
    )


def shipment_find(pk: int) -> Shipment:
    """The shipment a service acts on (it re-reads it under its lock); 404 when there is none."""
    shipment = Shipment.objects.filter(pk=pk).first()
    if shipment is None:
        raise NotFound(f"shipment {pk} does not exist")
    return shipment


def shipment_get(pk: int) -> Shipment:
    """One shipment with everything its detail shows, prefetched (a fixed number of queries)."""
    live = ShipmentVial.objects.filter(released_at__isnull=True).select_related("vial__lot").order_by("vial_id")
    shipment = (
        shipment_list()
        .prefetch_related(
            Prefetch("allocations", queryset=live, to_attr="live_allocations"),
            Prefetch("custody_events", queryset=CustodyEvent.objects.select_related("recorded_by", "signature")
                     .order_by("occurred_at", "id"), to_attr="custody"),
            Prefetch("temperature_logs", queryset=TemperatureLog.objects.filter(voided_at__isnull=True)
                     .select_related("investigation").defer("source_csv"), to_attr="live_logs"),
        )
        .filter(pk=pk)
        .first()
    )
    if shipment is None:
        raise NotFound(f"shipment {pk} does not exist")
    return shipment


def shipment_signatures(shipment: Shipment) -> list[Signature]:
    return list(
        Signature.objects.filter(content_type=ContentType.objects.get_for_model(Shipment), object_id=str(shipment.pk))
        .select_related("signer").order_by("signed_at", "id")
    )


def shipment_current_log(shipment: Shipment) -> TemperatureLog | None:
    logs = getattr(shipment, "live_logs", None)
    if logs is not None:
        return logs[0] if logs else None
    return TemperatureLog.objects.filter(shipment=shipment, voided_at__isnull=True).defer("source_csv").first()


def log_readings(log: TemperatureLog) -> list[Reading]:
    rows = TemperatureReading.objects.filter(log=log).order_by("at").values_list("at", "temperature_c")
    return [Reading(at, temperature) for at, temperature in rows]


def shipment_lots(shipment: Shipment) -> list[dict]:
    """Lots in the shipment with their vial counts and expiry (for the label and the packing list)."""
    rows = (
        CMLot.objects.filter(vials__shipment_allocations__shipment=shipment,
                             vials__shipment_allocations__released_at__isnull=True)
        .annotate(count=Count("vials"))
        .order_by("expiry", "lot_number")
        .values("lot_number", "expiry", "count")
    )
    return list(rows)


# --- recall --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecallVial:
    serial: str
    lot_number: str
    expiry: dt.date | None
    status: str
    shipment: Shipment | None


@dataclass
class Recall:
    subject_type: str  # "lot" | "donor"
    subject: str
    lots: list[CMLot]
    vials: list[RecallVial]
    shipments: list[Shipment] = field(default_factory=list)
    consignees: list[Consignee] = field(default_factory=list)

    @property
    def vials_off_site(self) -> int:
        return sum(1 for v in self.vials if v.shipment is not None and v.shipment.status not in
                   (ShipmentStatus.DRAFT, ShipmentStatus.PACKED))


def _recall(subject_type: str, subject: str, lots: Iterable[CMLot]) -> Recall:
    lots = list(lots)
    vials = list(Vial.objects.filter(lot__in=lots).select_related("lot").order_by("lot__lot_number", "sequence"))
    live = {
        a.vial_id: a.shipment
        for a in ShipmentVial.objects.filter(vial__lot__in=lots, released_at__isnull=True)
        .select_related("shipment__consignee")
    }
    shipments: dict[int, Shipment] = {}
    consignees: dict[int, Consignee] = {}
    for shipment in live.values():
        shipments.setdefault(shipment.pk, shipment)
        consignees.setdefault(shipment.consignee_id, shipment.consignee)
    return Recall(
        subject_type=subject_type,
        subject=subject,
        lots=lots,
        vials=[RecallVial(v.serial, v.lot.lot_number, v.lot.expiry, v.status, live.get(v.pk)) for v in vials],
        shipments=sorted(shipments.values(), key=lambda s: s.pk),
        consignees=sorted(consignees.values(), key=lambda c: c.name),
    )


def recall_for_lot(lot_number: str) -> Recall:
    lot = CMLot.objects.select_related("product").filter(lot_number=lot_number).first()
    if lot is None:
        raise NotFound(f"lot {lot_number} does not exist")
    return _recall("lot", lot.lot_number, [lot])


def recall_for_donor(code: str) -> Recall:
    """Every lot made with this donor's cells (through any bank, culture and harvest) and where its vials went."""
    donor = CellSource.objects.filter(code=code).first()
    if donor is None:
        raise NotFound(f"donor {code} does not exist")
    lots = (
        CMLot.objects.filter(contributions__harvest__culture__bank__source=donor)
        .select_related("product").distinct().order_by("lot_number")
    )
    return _recall("donor", donor.code, lots)


RECALL_CSV_HEADER = (
    "recall_of", "lot", "expiry", "vial_serial", "vial_status", "shipment", "sscc", "shipment_status", "shipped_at",
    "received_at", "consignee", "consignee_address", "consignee_country", "contact_name", "contact_phone",
    "contact_email",
)


def recall_csv(recall: Recall) -> str:
    """One row per vial; cells a spreadsheet would run as formulas are neutralised (exports.csv_cell)."""

    def row(v: RecallVial) -> list:
        s = v.shipment
        c = s.consignee if s else None
        return [
            f"{recall.subject_type} {recall.subject}", v.lot_number, v.expiry, v.serial, v.status,
            s.reference if s else "", s.sscc if s else "", s.status if s else "",
            s.shipped_at.isoformat() if s and s.shipped_at else "",
            s.received_at.isoformat() if s and s.received_at else "",
            c.name if c else "", ", ".join(c.address_lines[1:-1]) if c else "", c.country if c else "",
            c.contact_name if c else "", c.contact_phone if c else "", c.contact_email if c else "",
        ]

    return csv_render(RECALL_CSV_HEADER, (row(v) for v in recall.vials))


def vial_destinations(vial_ids: list[int]) -> dict[int, list[dict]]:
    """Where vials went (registered with ``batches.selectors.register_vial_destinations`` for the traces)."""
    found: dict[int, list[dict]] = {}
    live = (ShipmentVial.objects.filter(vial_id__in=vial_ids, released_at__isnull=True)
            .select_related("shipment__consignee").order_by("vial_id"))
    for a in live:
        s = a.shipment
        found.setdefault(a.vial_id, []).append({
            "shipment": s.reference, "sscc": s.sscc, "status": s.status, "consignee": s.consignee.name,
            "country": s.consignee.country, "shipped_at": s.shipped_at, "received_at": s.received_at,
        })
    return found


def vial_consignees(lot_ids: list[int]) -> set[str]:
    """Every consignee a live vial of ``lot_ids`` went to by a live allocation (a released one names nobody): the
    donor trace's consignees (``batches.selectors.register_vial_consignees``).

    Asked per consignee (does one of its live allocations hold a vial of these lots?), not as one pass over the
    lots' vials grouped by consignee: the busiest donor of the default scale has 693,000 vials and the site 200
    consignees, so the question stops at each consignee's first match (8 ms) where the pass joined every vial to
    the site's live allocations (110 ms, B8b). PostgreSQL still drives from the vials for a donor with few."""
    went = ShipmentVial.objects.filter(shipment__consignee=OuterRef("pk"), released_at__isnull=True,
                                       vial__voided_at__isnull=True, vial__lot_id__in_ids=lot_ids)
    return set(Consignee.objects.filter(Exists(went)).values_list("name", flat=True))
