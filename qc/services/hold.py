"""Hold and unhold: a flag with a reason on a lot (QC officer); a held lot moves nowhere and ships nothing."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from batches.locks import lot_lock
from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.audit import audited_update
from cmlims.exceptions import Conflict, field_error

# A lot that is finished (rejected, recalled, expired) is not held: there is nothing left to stop.
NOT_HOLDABLE = (LotStatus.REJECTED, LotStatus.RECALLED, LotStatus.EXPIRED)


@transaction.atomic
def lot_hold(*, lot_number: str, actor, reason: str) -> CMLot:
    roles.require_role(actor, roles.QC_OFFICER, "Putting a lot on hold")
    if not (reason or "").strip():
        raise field_error("reason", "a reason is required to put a lot on hold")
    lot = lot_lock(lot_number)
    conditions = []
    if lot.status in NOT_HOLDABLE:
        conditions.append({"code": "wrong_status", "detail": f"lot {lot.lot_number} is {lot.status}"})
    if lot.voided_at is not None:
        conditions.append({"code": "voided", "detail": f"lot {lot.lot_number} is voided"})
    if lot.on_hold:
        conditions.append({"code": "already_on_hold", "detail": f"lot {lot.lot_number} is on hold: {lot.hold_reason}"})
    if conditions:
        raise Conflict(f"lot {lot.lot_number} cannot be put on hold: " + "; ".join(c["detail"] for c in conditions),
                       code="hold_refused", conditions=conditions)
    # clean=False: a hold must always be possible, whatever else about the lot is still incomplete.
    return audited_update(lot, actor=actor, reason=reason, clean=False, on_hold=True, hold_reason=reason.strip(),
                          held_at=timezone.now(), held_by=actor)


@transaction.atomic
def lot_unhold(*, lot_number: str, actor, reason: str) -> CMLot:
    roles.require_role(actor, roles.QC_OFFICER, "Lifting a hold")
    if not (reason or "").strip():
        raise field_error("reason", "a reason is required to lift a hold")
    lot = lot_lock(lot_number)
    if not lot.on_hold:
        raise Conflict(f"lot {lot.lot_number} is not on hold", code="not_on_hold",
                       conditions=[{"code": "not_on_hold", "detail": f"lot {lot.lot_number} is not on hold"}])
    return audited_update(lot, actor=actor, reason=reason, clean=False, on_hold=False, hold_reason="",
                          held_at=None, held_by=None)
