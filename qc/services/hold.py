"""Hold and unhold: a flag with a reason on a lot (QC officer); a held lot moves nowhere and ships nothing.

The rules (which statuses may be held, who may) are the lot pipeline's ``hold``/``unhold``
(``batches.lifecycle``); the change itself is ``batches.services.lots.lot_set_hold``.
"""

from __future__ import annotations

from batches.models import CMLot
from batches.services.lots import lot_set_hold
from cmlims import roles
from cmlims.exceptions import field_error


def lot_hold(*, lot: CMLot, actor, reason: str) -> CMLot:
    roles.require_role(actor, roles.QC_OFFICER, "Putting a lot on hold")
    if not (reason or "").strip():
        raise field_error("reason", "a reason is required to put a lot on hold")
    return lot_set_hold(lot=lot, on_hold=True, actor=actor, reason=reason)


def lot_unhold(*, lot: CMLot, actor, reason: str) -> CMLot:
    roles.require_role(actor, roles.QC_OFFICER, "Lifting a hold")
    if not (reason or "").strip():
        raise field_error("reason", "a reason is required to lift a hold")
    return lot_set_hold(lot=lot, on_hold=False, actor=actor, reason=reason)
