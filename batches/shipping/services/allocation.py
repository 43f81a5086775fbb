"""Putting released vials into a draft shipment (rule 4) and taking them back out.

Concurrency (rule 10): the vials' lots, the vials (by id) and then the shipment are locked, in the order
of ``batches.locks``, and the vial's status is checked only after its lock is held. Two coordinators sending
the same vial therefore take turns: the second sees it allocated and is refused. The partial unique
index ``shipping_one_live_allocation_per_vial`` backs this at the database level.
By count, the eligible lots and then the shipment are locked, and vials already locked by another
allocation are skipped (PostgreSQL SKIP LOCKED, which never waits and so cannot deadlock), so two
coordinators picking from the same lot both succeed with different vials.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from batches.locks import lots_lock, vials_lock_unclaimed
from batches.models import CMLot, LotStatus, Vial, VialStatus
from batches.services.vials import vials_set_status
from batches.shipping.gs1 import ScanError, scan_parse
from batches.shipping.lifecycle import ALLOCATING, RELEASING, shipment_require
from batches.shipping.locks import lots_and_vials_lock, shipment_lock, shipment_pk, shipment_with_vials_lock
from batches.shipping.models import Shipment, ShipmentVial
from batches.shipping.services.common import (
    lot_shippable_conditions,
    require_coordinator,
    rule4_refusal,
    vials_refused,
)
from cmlims.audit import audited_bulk_create, audited_bulk_update
from cmlims.exceptions import Conflict, InvalidInput, field_error

MAX_VIALS_PER_REQUEST = 5000


def _allocate(shipment: Shipment, vials: Sequence[Vial], *, actor, scanned_as: dict[int, str]) -> list[ShipmentVial]:
    now = timezone.now()
    rows = audited_bulk_create(
        ShipmentVial,
        [ShipmentVial(shipment=shipment, vial=v, allocated_at=now, allocated_by=actor,
                      scanned_as=scanned_as.get(v.pk, "")[:200]) for v in vials],
        actor=actor,
        reason=f"allocated to {shipment}",
    )
    vials_set_status(vials=vials, to=VialStatus.ALLOCATED, actor=actor, reason=f"allocated to {shipment}")
    return rows


def _live_shipment_of(vial_ids: Sequence[int]) -> dict[int, str]:
    live = ShipmentVial.objects.filter(vial_id__in=vial_ids, released_at__isnull=True).select_related("shipment")
    return {a.vial_id: str(a.shipment) for a in live}


@transaction.atomic
def shipment_allocate_scans(*, shipment: Shipment, scans: Sequence[str], actor) -> list[ShipmentVial]:
    """Allocate vials given as typed serials or scanner input (GS1 element strings accepted).

    All or nothing: if any entry is refused, nothing is allocated and the 409 lists every refusal as
    ``{serial, reason}`` (serial = what was sent when it could not be read).
    """
    require_coordinator(actor, "Allocating vials")
    if not isinstance(scans, list | tuple) or not scans:
        raise field_error("vials", "give a non-empty list of vial serials or scans")
    if len(scans) > MAX_VIALS_PER_REQUEST:
        raise field_error("vials", f"at most {MAX_VIALS_PER_REQUEST} per request")
    refusals: list[dict] = []
    parsed = []
    for raw in scans:
        if not isinstance(raw, str):
            raise field_error("vials", "each entry must be a string (a serial or a scan)")
        try:
            parsed.append((raw, scan_parse(raw)))
        except ScanError as exc:
            refusals.append({"serial": raw, "reason": str(exc)})
    counts = Counter(scanned.serial for _, scanned in parsed)
    refusals += [{"serial": serial, "reason": f"listed {n} times"} for serial, n in counts.items() if n > 1]

    serials = sorted(counts)
    wanted = Vial.objects.filter(serial__in=serials).values_list("pk", flat=True)
    vials = {v.serial: v for v in lots_and_vials_lock(wanted)}
    locked = shipment_lock(shipment)
    shipment_require(locked, ALLOCATING)
    elsewhere = _live_shipment_of([v.pk for v in vials.values() if v.status == VialStatus.ALLOCATED])
    today = timezone.localdate()
    chosen: list[Vial] = []
    scanned_as: dict[int, str] = {}
    for raw, scanned in parsed:
        if counts[scanned.serial] > 1:
            continue
        vial = vials.get(scanned.serial)
        reason = None
        if vial is None:
            reason = "no vial with this serial"
        elif vial.status != VialStatus.AVAILABLE:
            where = elsewhere.get(vial.pk)
            reason = f"vial is {vial.status}" + (f" (in {where})" if where else "")
        else:
            reason = rule4_refusal(vial, product_id=locked.product_id, today=today)
        if reason is None and scanned.lot and scanned.lot != vial.lot.lot_number:
            reason = f"scanned lot {scanned.lot} does not match the vial's lot {vial.lot.lot_number}"
        if reason is None and scanned.expiry and scanned.expiry != vial.lot.expiry:
            # The label in hand disagrees with the record (a mix-up or an outdated label): do not ship on it.
            reason = f"scanned expiry {scanned.expiry} does not match the lot's expiry {vial.lot.expiry}"
        if reason is None and scanned.gtin and scanned.gtin != locked.product.gtin:
            reason = f"scanned GTIN {scanned.gtin} is not the product's GTIN {locked.product.gtin}"
        if reason:
            refusals.append({"serial": scanned.serial, "reason": reason})
        else:
            chosen.append(vial)
            scanned_as[vial.pk] = raw
    if refusals:
        raise vials_refused(refusals, action="allocated")
    return _allocate(locked, chosen, actor=actor, scanned_as=scanned_as)


@transaction.atomic
def shipment_allocate_count(
    *, shipment: Shipment, count: int, actor, lot_number: str | None = None
) -> list[ShipmentVial]:
    """Allocate ``count`` eligible vials first-expiry-first-out: the lots of the shipment's product that
    expire first give their vials first (lowest vial sequence first); ``lot_number`` limits it to one lot."""
    require_coordinator(actor, "Allocating vials")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VIALS_PER_REQUEST:
        raise field_error("count", f"must be a whole number from 1 to {MAX_VIALS_PER_REQUEST}")
    today = timezone.localdate()
    named = lot_number.strip() if isinstance(lot_number, str) else None
    product_id = Shipment.objects.filter(pk=shipment_pk(shipment)).values_list("product_id", flat=True).first()
    # The lots first (a hold or recall of one waits for this allocation, or this one sees it), then the shipment.
    lots_lock(CMLot.objects.filter(lot_number=named) if named is not None else CMLot.objects.filter(
        product_id=product_id, status=LotStatus.RELEASED, on_hold=False, expiry__gte=today, voided_at__isnull=True))
    locked = shipment_lock(shipment)
    shipment_require(locked, ALLOCATING)
    candidates = Vial.objects.filter(
        status=VialStatus.AVAILABLE, voided_at__isnull=True,
        lot__product_id=locked.product_id, lot__status=LotStatus.RELEASED, lot__on_hold=False,
        lot__expiry__gte=today, lot__voided_at__isnull=True,
    )
    if lot_number is not None:
        if not isinstance(lot_number, str) or not lot_number.strip():
            raise field_error("lot", "give a lot number")
        lot = CMLot.objects.filter(lot_number=lot_number.strip()).first()
        if lot is None:
            raise InvalidInput(f"lot: no lot {lot_number}", fields={"lot": [f"no lot with number {lot_number}"]})
        conditions = lot_shippable_conditions(lot, product_id=locked.product_id, today=today)
        if conditions:
            raise Conflict(f"Vials of lot {lot} cannot be allocated.", code="lot_not_allocatable",
                           conditions=conditions)
        candidates = candidates.filter(lot=lot)
    picked = vials_lock_unclaimed(candidates.order_by("lot__expiry", "lot_id", "sequence", "pk"), limit=count)
    if len(picked) < count:
        where = f"lot {lot_number}" if lot_number else f"released lots of {locked.product}"
        raise Conflict(
            f"Only {len(picked)} eligible vial(s) of {where} are available; {count} asked. Nothing was allocated.",
            code="not_enough_vials",
            conditions=[{"code": "not_enough_vials", "detail": f"{len(picked)} available, {count} asked"}],
        )
    return _allocate(locked, picked, actor=actor, scanned_as={})


@transaction.atomic
def shipment_release_vials(
    *, shipment: Shipment, actor, scans: Sequence[str] | None = None, reason: str = ""
) -> list[ShipmentVial]:
    """Take vials (all when ``scans`` is None) out of a draft shipment; they become available again."""
    require_coordinator(actor, "Releasing vials from a shipment")
    locked, vials = shipment_with_vials_lock(shipment)
    shipment_require(locked, RELEASING)
    live = {a.vial.serial: a for a in locked.allocations.filter(released_at__isnull=True)
            .select_related("vial").order_by("vial_id")}
    if scans is None:
        chosen = list(live.values())
    else:
        if not isinstance(scans, list | tuple) or not scans:
            raise field_error("vials", "give a non-empty list of vial serials or scans")
        refusals, chosen = [], []
        for raw in scans:
            try:
                serial = scan_parse(str(raw)).serial
            except ScanError as exc:
                refusals.append({"serial": str(raw), "reason": str(exc)})
                continue
            if serial not in live:
                refusals.append({"serial": serial, "reason": f"not in {locked}"})
            elif live[serial] not in chosen:
                chosen.append(live[serial])
        if refusals:
            raise vials_refused(refusals, action="released")
    if not chosen:
        return []
    why = (reason or "").strip() or f"taken out of draft {locked}"
    now = timezone.now()
    chosen.sort(key=lambda a: a.vial_id)
    taken_out = {a.vial_id for a in chosen}
    # A vial destroyed while allocated stays destroyed (the pipeline has no way back from it).
    vials = [v for v in vials if v.pk in taken_out and v.status == VialStatus.ALLOCATED]
    for allocation in chosen:
        allocation.released_at, allocation.released_by, allocation.release_reason = now, actor, why
    audited_bulk_update(chosen, ["released_at", "released_by", "release_reason"], actor=actor, reason=why)
    vials_set_status(vials=vials, to=VialStatus.AVAILABLE, actor=actor, reason=why)
    return chosen
