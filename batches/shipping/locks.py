"""Row locks of the shipping app, in one place; the order continues ``batches.locks``:

    lot(s) → vials → shipment → its temperature logs

A step that touches a shipment's vials (allocate, pack, ship, receive, cancel, release) locks the vials'
lots, then the vials, then the shipment (``shipment_with_vials_lock``), so it can never deadlock with a
lot operation (hold, recall) or with another step on the same shipment.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from batches.locks import lots_lock, row_lock, rows_lock, vials_lock
from batches.models import CMLot, Vial
from batches.shipping.models import Consignee, Shipment, ShipmentVial, TemperatureLog
from cmlims.exceptions import NotFound

# Retries when vials join or leave the shipment between reading its vials and locking it (rare).
_ATTEMPTS = 5


def shipment_pk(shipment: Shipment | int) -> int:
    return shipment.pk if isinstance(shipment, Shipment) else shipment


def shipment_lock(shipment: Shipment | int) -> Shipment:
    """The shipment row under a lock, with its product and consignee; 404 when there is none."""
    pk = shipment_pk(shipment)
    try:
        return Shipment.objects.select_for_update(of=("self",)).select_related("product", "consignee").get(pk=pk)
    except Shipment.DoesNotExist:
        raise NotFound(f"shipment {pk} does not exist") from None


def lots_and_vials_lock(vial_pks: Iterable[int]) -> list[Vial]:
    """The vials' lots, then the vials (in id order, with their locked lots attached)."""
    vial_pks = sorted(set(vial_pks))
    lot_pks = Vial.objects.filter(pk__in=vial_pks).values("lot_id")
    lots = {lot.pk: lot for lot in lots_lock(CMLot.objects.filter(pk__in=lot_pks))}
    vials = vials_lock(pks=vial_pks)
    for vial in vials:
        vial.lot = lots.get(vial.lot_id, vial.lot)
    return vials


class _Moved(Exception):
    """The shipment's vials changed while we were taking the locks: let go of them and start again."""


def _live_vial_pks(pk: int) -> set[int]:
    return set(ShipmentVial.objects.filter(shipment_id=pk, released_at__isnull=True).values_list("vial_id", flat=True))


def shipment_with_vials_lock(shipment: Shipment | int) -> tuple[Shipment, list[Vial]]:
    """The shipment's vials' lots, its vials and the shipment itself under locks, in the documented order.

    Vials join or leave a shipment only under its lock, which is taken last here: if they changed in
    between, the savepoint is rolled back (releasing these locks) and the locks are taken again.
    """
    pk = shipment_pk(shipment)
    for _ in range(_ATTEMPTS):
        wanted = _live_vial_pks(pk)
        try:
            with transaction.atomic():
                vials = lots_and_vials_lock(wanted)
                locked = shipment_lock(pk)
                if _live_vial_pks(pk) != wanted:
                    raise _Moved
                return locked, vials
        except _Moved:
            continue
    raise RuntimeError(f"the vials of shipment {pk} kept changing while it was being locked")


def temperature_logs_lock(shipment: Shipment) -> list[TemperatureLog]:
    return rows_lock(TemperatureLog.objects.filter(shipment=shipment, voided_at__isnull=True))


def consignee_lock(consignee: Consignee | int) -> Consignee:
    return row_lock(Consignee, getattr(consignee, "pk", consignee))
