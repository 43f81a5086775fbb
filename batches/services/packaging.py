"""Packaging into serialised vials (lot → packaged, quarantine) and vial housekeeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from cmlims.audit import audited_bulk_create, audited_create, audited_update
from cmlims.exceptions import Conflict, field_error
from cmlims.timing import step_entry

from ..locks import lot_lock, vial_lock
from ..models import CMLot, LotStatus, PackagingRun, StorageLocation, Vial, VialStatus
from .common import refuse_if_voided, require_lab_staff, step_time
from .lots import lot_transition
from .vials import vials_set_status


def vial_serial(lot_number: str, sequence: int) -> str:
    """GS1 AI (21) serial: the lot number (unique site-wide) plus a 5-digit sequence — unique across products."""
    return f"{lot_number}-{sequence:05d}"


@transaction.atomic
def packaging_record(
    *, lot: CMLot, actor, run_number: str, started_at: datetime, ended_at: datetime, vials_packaged: int,
    storage_location: StorageLocation, vials_rejected: int = 0, reason: str = "",
) -> PackagingRun:
    """Package a freeze-dried lot: creates the vials (quarantine), sets expiry from the product's shelf life
    and moves the lot to ``packaged`` — one transaction. Never more vials than the dryer loaded."""
    require_lab_staff(actor, "Recording packaging")
    lot = lot_lock(lot)
    refuse_if_voided(lot)
    run = getattr(lot, "lyophilisation_run", None)
    if lot.status != LotStatus.FREEZE_DRYING or run is None or not run.is_complete:
        raise Conflict(
            f"lot {lot} is {lot.status}; packaging follows a completed freeze-drying run", code="wrong_order",
            conditions=[{"code": "drying_incomplete", "detail": "the freeze-drying run is not completed"}],
        )
    if hasattr(lot, "packaging_run"):
        raise Conflict(f"lot {lot} is already packaged", code="wrong_status",
                       conditions=[{"code": "already_packaged", "detail": f"lot {lot} has a packaging run"}])
    if vials_packaged is None or vials_packaged < 1:
        raise field_error("vials_packaged", "must be at least 1 vial")
    if vials_rejected is None or vials_rejected < 0:
        raise field_error("vials_rejected", "must not be negative")
    if vials_packaged + vials_rejected > run.vials_loaded:
        raise field_error("vials_packaged", f"{vials_packaged} packaged + {vials_rejected} rejected is more than "
                                            f"the {run.vials_loaded} vials the freeze-drying run loaded")
    started_at = step_time(started_at, "started_at")
    with step_entry(ended_at, field="ended_at", reason=reason, previous=started_at,
                    previous_name="started at") as ended_at:
        if run.completed_at and started_at < (run.ended_at or run.completed_at):
            raise field_error("started_at", "packaging starts after the freeze-drying run ended")
        if storage_location is None or storage_location.voided_at is not None:
            raise field_error("storage_location", "choose a storage location that is in use")
        packaging = audited_create(
            PackagingRun, actor=actor, reason=reason, run_number=run_number, lot=lot, lyophilisation_run=run,
            started_at=started_at, ended_at=ended_at, vials_packaged=vials_packaged, vials_rejected=vials_rejected,
            storage_location=storage_location, performed_by=actor, performed_at=ended_at,
        )
        audited_bulk_create(
            Vial,
            [Vial(serial=vial_serial(lot.lot_number, n), lot=lot, packaging_run=packaging, sequence=n,
                  status=VialStatus.AVAILABLE, storage_location=storage_location)
             for n in range(1, vials_packaged + 1)],
            actor=actor, reason=reason,
        )
        # Expiry runs from the packaging date (end of manufacture) for the product's shelf life.
        audited_update(lot, actor=actor, reason=reason, clean=False,
                       expiry=ended_at.date() + timedelta(days=lot.product.shelf_life_days))
        lot_transition(lot=lot, to=LotStatus.PACKAGED, actor=actor, reason=reason)
    return packaging


@transaction.atomic
def vial_destroy(*, vial: Vial, actor, reason: str) -> Vial:
    """available | allocated → destroyed, with a reason (breakage, sampling, expiry)."""
    require_lab_staff(actor, "Destroying a vial")
    if not (reason or "").strip():
        raise field_error("reason", "say why the vial is destroyed")
    return vials_set_status(vials=[vial], to=VialStatus.DESTROYED, actor=actor, reason=reason,
                            destroyed_reason=reason)[0]


@transaction.atomic
def vial_move(*, vial: Vial, storage_location: StorageLocation, actor, reason: str = "") -> Vial:
    require_lab_staff(actor, "Moving a vial")
    vial = vial_lock(vial)
    if vial.status not in (VialStatus.AVAILABLE, VialStatus.ALLOCATED):
        raise Conflict(f"vial {vial} is {vial.status} and not in our storage", code="wrong_status",
                       vials=[{"serial": vial.serial, "reason": f"is {vial.status}"}])
    return audited_update(vial, actor=actor, reason=reason, storage_location=storage_location)
