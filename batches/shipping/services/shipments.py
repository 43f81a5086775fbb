"""The shipment's life: draft → packed → shipped → delivered → (receipt_on_hold →) received, or cancelled.

Each step is one transaction: the shipment row is locked (after its vials and their lots when the step
touches them, the order of ``batches.shipping.locks``), the status rule checked, the change and its
custody event written with their audit entries. Shipping and receipt are electronic signatures
(meanings "shipped" and "received"): the password is checked first in its own committed transaction
(so failures count toward the lockout even when the step is refused), then the step runs.
Rule 4 is checked again when packing and shipping: a lot put on hold, recalled or expired after its
vials were allocated stops the shipment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from batches.models import Product, Vial, VialStatus
from batches.services.vials import vials_set_status
from batches.shipping.lifecycle import CHANGING, SHIPMENT_PIPELINE, shipment_require
from batches.shipping.locks import shipment_lock, shipment_with_vials_lock
from batches.shipping.models import (
    Consignee,
    CustodyEvent,
    CustodyKind,
    Shipment,
    ShipmentStatus,
    ShipmentVial,
)
from batches.shipping.services.common import (
    require_coordinator,
    rule4_refusal,
    vials_refused,
    when,
)
from batches.shipping.services.status import shipment_set_status
from batches.shipping.signed import SIGNED_FIELDS, signed_content
from cmlims.audit import audited_bulk_update, audited_create, audited_update
from cmlims.esign.models import Meaning, Signature
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import InvalidInput, field_error

DRAFT_EDITABLE = ("consignee", "courier", "tracking_number", "shipper_type", "coolant", "logger_serial", "notes")


def _fresh(model, value: Any, field: str):
    """Re-read by id (the caller's instance may predate a void); a bad id is a 400 naming the field."""
    try:
        found = model.objects.filter(pk=int(getattr(value, "pk", value))).first()
    except (TypeError, ValueError):
        found = None
    if found is None:
        raise field_error(field, f"no such {field}")
    return found


def _consignee_usable(consignee: Any) -> Consignee:
    consignee = _fresh(Consignee, consignee, "consignee")
    if consignee.voided_at is not None:
        raise field_error("consignee", f"{consignee} is voided and no longer supplied")
    return consignee


@transaction.atomic
def shipment_create(*, consignee: Consignee | int, product: Product | int, actor, **values: Any) -> Shipment:
    """A draft shipment with its SSCC; the product's transport range and allowed minutes are copied onto it."""
    require_coordinator(actor, "Creating a shipment")
    unknown = sorted(set(values) - set(DRAFT_EDITABLE) - {"consignee"})
    if unknown:
        raise InvalidInput("; ".join(f"{n}: cannot be set here" for n in unknown),
                           fields={n: ["cannot be set here"] for n in unknown})
    consignee = _consignee_usable(consignee)
    product = _fresh(Product, product, "product")
    if product.voided_at is not None:
        raise field_error("product", f"{product} is voided")
    # One audit entry: the model assigns reference and SSCC (from the id) inside the same write.
    return audited_create(
        Shipment, actor=actor, consignee=consignee, product=product, created_by=actor,
        transport_temperature_min_c=product.transport_temperature_min_c,
        transport_temperature_max_c=product.transport_temperature_max_c,
        transport_excursion_allowed_minutes=product.transport_excursion_allowed_minutes,
        **values,
    )


@transaction.atomic
def shipment_update(*, shipment: Shipment, actor, reason: str = "", **values: Any) -> Shipment:
    """Change a draft shipment's consignee, courier, pack-out or notes (other fields are refused by name)."""
    require_coordinator(actor, "Changing a shipment")
    unknown = sorted(set(values) - set(DRAFT_EDITABLE))
    if unknown:
        raise InvalidInput("; ".join(f"{n}: cannot be changed here" for n in unknown),
                           fields={n: ["cannot be changed here"] for n in unknown})
    locked = shipment_lock(shipment)
    shipment_require(locked, CHANGING)
    if "consignee" in values:
        values["consignee"] = _consignee_usable(values["consignee"])
    return audited_update(locked, actor=actor, reason=reason, **values)


def _check_rule4(shipment: Shipment, vials: list[Vial], *, expected: str, action: str) -> None:
    today = timezone.localdate()
    refusals = []
    for vial in vials:
        reason = None
        if vial.status != expected:
            reason = f"vial is {vial.status}, expected {expected}"
        else:
            reason = rule4_refusal(vial, product_id=shipment.product_id, today=today)
        if reason:
            refusals.append({"serial": vial.serial, "reason": reason})
    if refusals:
        raise vials_refused(refusals, action=action)


def _custody(shipment: Shipment, *, kind: str, occurred_at: dt.datetime, actor, party: str = "", notes: str = "",
             signature: Signature | None = None) -> CustodyEvent:
    return audited_create(
        CustodyEvent, actor=actor, shipment=shipment, kind=kind, occurred_at=occurred_at, recorded_by=actor,
        recorded_at=timezone.now(), party=party or "", notes=notes or "", signature=signature,
    )


def _given(**values: str | None) -> dict[str, str]:
    """The values a step was given, stripped; None or blank keeps what the shipment already records."""
    return {k: v.strip() for k, v in values.items() if v is not None and v.strip()}


def _last_step_at(shipment: Shipment) -> dt.datetime | None:
    return max((t for t in (shipment.packed_at, shipment.shipped_at, shipment.delivered_at) if t), default=None)


@transaction.atomic
def shipment_pack(
    *, shipment: Shipment, actor, occurred_at: dt.datetime | None = None, notes: str = "",
    shipper_type: str | None = None, coolant: str | None = None, logger_serial: str | None = None,
) -> Shipment:
    """Draft → packed: vials in the shipper with its coolant (and logger). Custody event "packed by"."""
    require_coordinator(actor, "Packing a shipment")
    locked, vials = shipment_with_vials_lock(shipment)
    shipment_require(locked, ShipmentStatus.PACKED)
    at = when(occurred_at, "occurred_at", not_before=locked.created_at)
    # Blank means "as recorded at creation": a form's untouched field must not wipe the coolant or logger.
    pack_out = _given(shipper_type=shipper_type, coolant=coolant, logger_serial=logger_serial)
    missing = [f for f in ("shipper_type", "coolant") if not (pack_out.get(f) or getattr(locked, f))]
    conditions = [{"code": "pack_out_missing", "detail": f"{f.replace('_', ' ')} is not recorded"} for f in missing]
    if not vials:
        conditions.append({"code": "no_vials", "detail": "the shipment holds no vials"})
    SHIPMENT_PIPELINE.check(locked, ShipmentStatus.PACKED, actor, extra=conditions)
    _check_rule4(locked, vials, expected=VialStatus.ALLOCATED, action="packed")
    locked = shipment_set_status(shipment=locked, to=ShipmentStatus.PACKED, actor=actor, conditions=conditions,
                                 packed_at=at, **pack_out)
    _custody(locked, kind=CustodyKind.PACKED, occurred_at=at, actor=actor,
             notes=f"{len(vials)} vial(s)" + (f"; {notes}" if notes else ""))
    return locked


def _vials_to(vials: list[Vial], status: str, *, actor, reason: str) -> None:
    if vials:
        vials_set_status(vials=vials, to=status, actor=actor, reason=reason)


def shipment_ship(
    *, shipment: Shipment, actor, username: str, password: str, meaning: str, reason: str = "",
    courier: str | None = None, tracking_number: str | None = None, party: str = "",
    occurred_at: dt.datetime | None = None, notes: str = "",
) -> Shipment:
    """Packed → shipped, signed "shipped": handed to the courier (custody event); vials become shipped."""
    require_coordinator(actor, "Shipping")
    grant = signing_credentials_verify(signer=actor, username=username, password=password, meaning=Meaning.SHIPPED,
                                       meaning_sent=meaning, reason=reason, subject=shipment)
    with transaction.atomic():
        locked, vials = shipment_with_vials_lock(shipment)
        shipment_require(locked, ShipmentStatus.SHIPPED)
        at = when(occurred_at, "occurred_at", not_before=_last_step_at(locked))
        carrier = _given(courier=courier, tracking_number=tracking_number)
        missing = {f: ["required to hand the shipment to a courier"] for f in ("courier", "tracking_number")
                   if not (carrier.get(f) or getattr(locked, f))}
        if missing:
            raise InvalidInput("; ".join(f"{f}: required" for f in missing), fields=missing)
        _check_rule4(locked, vials, expected=VialStatus.ALLOCATED, action="shipped")
        locked = shipment_set_status(shipment=locked, to=ShipmentStatus.SHIPPED, actor=actor, reason=reason,
                                     signed=True, shipped_at=at, **carrier)
        signature = signature_record(grant=grant, subject=locked, signer=actor, meaning=meaning, reason=reason,
                                     content=signed_content(locked, meaning=meaning, serials=[v.serial for v in vials]),
                                     field_list_version=SIGNED_FIELDS[meaning])
        _custody(locked, kind=CustodyKind.HANDED_TO_COURIER, occurred_at=at, actor=actor,
                 party=party or locked.courier,
                 notes=f"tracking {locked.tracking_number}" + (f"; {notes}" if notes else ""), signature=signature)
        _vials_to(vials, VialStatus.SHIPPED, actor=actor, reason=f"shipped in {locked}")
        return locked


@transaction.atomic
def shipment_deliver(
    *, shipment: Shipment, actor, occurred_at: dt.datetime | None = None, party: str = "", notes: str = ""
) -> Shipment:
    """Shipped → delivered: the courier's proof of delivery (when, and who signed for it at the consignee)."""
    require_coordinator(actor, "Recording a delivery")
    locked = shipment_lock(shipment)
    shipment_require(locked, ShipmentStatus.DELIVERED)
    at = when(occurred_at, "occurred_at", not_before=locked.shipped_at)
    locked = shipment_set_status(shipment=locked, to=ShipmentStatus.DELIVERED, actor=actor,
                                 reason="delivered by the courier", delivered_at=at)
    _custody(locked, kind=CustodyKind.DELIVERED, occurred_at=at, actor=actor, party=party, notes=notes)
    return locked


def shipment_receive(
    *, shipment: Shipment, actor, username: str, password: str, meaning: str, received_by_name: str,
    reason: str = "", occurred_at: dt.datetime | None = None, notes: str = "",
) -> Shipment:
    """Delivered (or receipt on hold, once its excursion investigation is closed) → received, signed "received"."""
    require_coordinator(actor, "Confirming receipt")
    if not (received_by_name or "").strip():
        raise field_error("received_by_name", "name the consignee's person who received the shipment")
    grant = signing_credentials_verify(signer=actor, username=username, password=password, meaning=Meaning.RECEIVED,
                                       meaning_sent=meaning, reason=reason, subject=shipment)
    with transaction.atomic():
        locked, vials = shipment_with_vials_lock(shipment)
        shipment_require(locked, ShipmentStatus.RECEIVED)
        at = when(occurred_at, "occurred_at", not_before=locked.delivered_at)
        locked = shipment_set_status(shipment=locked, to=ShipmentStatus.RECEIVED, actor=actor, signed=True,
                                     reason=reason or "receipt confirmed", received_at=at,
                                     received_by_name=received_by_name.strip())
        signature = signature_record(grant=grant, subject=locked, signer=actor, meaning=meaning, reason=reason,
                                     content=signed_content(locked, meaning=meaning, serials=[v.serial for v in vials]),
                                     field_list_version=SIGNED_FIELDS[meaning])
        _custody(locked, kind=CustodyKind.RECEIVED, occurred_at=at, actor=actor, party=received_by_name.strip(),
                 notes=notes, signature=signature)
        _vials_to(vials, VialStatus.RECEIVED, actor=actor, reason=f"received from {locked}")
        return locked


@transaction.atomic
def shipment_cancel(*, shipment: Shipment, actor, reason: str) -> Shipment:
    """Draft or packed → cancelled with a reason; its vials go back to available. Never deleted."""
    require_coordinator(actor, "Cancelling a shipment")
    if not (reason or "").strip():
        raise field_error("reason", "a reason is required to cancel a shipment")
    locked, vials = shipment_with_vials_lock(shipment)
    shipment_require(locked, ShipmentStatus.CANCELLED)
    allocations = list(ShipmentVial.objects.filter(shipment=locked, released_at__isnull=True).order_by("vial_id"))
    now = timezone.now()
    for allocation in allocations:
        allocation.released_at, allocation.released_by, allocation.release_reason = now, actor, reason
    audited_bulk_update(allocations, ["released_at", "released_by", "release_reason"], actor=actor, reason=reason)
    # A vial destroyed while allocated stays destroyed (the pipeline has no way back from it).
    _vials_to([v for v in vials if v.status == VialStatus.ALLOCATED], VialStatus.AVAILABLE, actor=actor,
              reason=f"{locked} cancelled: {reason}")
    return shipment_set_status(shipment=locked, to=ShipmentStatus.CANCELLED, actor=actor, reason=reason,
                               cancelled_at=now, cancelled_by=actor, cancel_reason=reason)
