"""Shipping coordinators' start page (cmlims.home): released stock by product and expiry (first expiry
first out), shipments by status, receipts on hold. A fixed number of queries whatever the stock."""

from __future__ import annotations

from django.db.models import Count

from batches.models import LotStatus, Vial, VialStatus
from batches.shipping.models import Shipment, ShipmentStatus
from cmlims import roles
from cmlims.home import HomeRow, home_section_add

STOCK_SHOWN = 12
OPEN_STATUSES = (ShipmentStatus.DRAFT, ShipmentStatus.PACKED, ShipmentStatus.SHIPPED, ShipmentStatus.DELIVERED)


def stock_rows(user) -> list[HomeRow]:
    """Available vials of released, unheld lots, one row per lot, the earliest expiry first (FEFO)."""
    lots = (Vial.objects.filter(status=VialStatus.AVAILABLE, lot__status=LotStatus.RELEASED, lot__on_hold=False,
                                lot__voided_at__isnull=True)
            .values("lot_id", "lot__lot_number", "lot__product__name", "lot__expiry")
            .annotate(n=Count("id")).order_by("lot__expiry", "lot__lot_number")[:STOCK_SHOWN])
    return [HomeRow(label=f"{row['lot__product__name']} · lot {row['lot__lot_number']}", count=row["n"],
                    changelist="batches.vial",
                    query={"lot__id__exact": row["lot_id"], "status__exact": VialStatus.AVAILABLE},
                    detail=f"expires {row['lot__expiry']:%Y-%m-%d}" if row["lot__expiry"] else "no expiry set")
            for row in lots]


def shipment_rows(user) -> list[HomeRow]:
    counts = dict(Shipment.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [HomeRow(label=f"shipments {ShipmentStatus(status).label}", count=counts.get(status, 0),
                    changelist="shipping.shipment", query={"status__exact": status}) for status in OPEN_STATUSES]


def receipt_hold_rows(user) -> list[HomeRow]:
    count = Shipment.objects.filter(status=ShipmentStatus.RECEIPT_ON_HOLD).count()
    return [HomeRow(label="receipts on hold (temperature excursion)", count=count, changelist="shipping.shipment",
                    query={"status__exact": ShipmentStatus.RECEIPT_ON_HOLD},
                    detail="the consignee holds the vials until the excursion is assessed")]


home_section_add(key="ship-stock", title="Released stock, first expiry first", roles=[roles.SHIPPING_COORDINATOR],
                 rows=stock_rows, order=10, empty="No released stock available.")
home_section_add(key="ship-shipments", title="Shipments", roles=[roles.SHIPPING_COORDINATOR], rows=shipment_rows,
                 order=20)
home_section_add(key="ship-holds", title="Receipts on hold", roles=[roles.SHIPPING_COORDINATOR],
                 rows=receipt_hold_rows, order=30)
