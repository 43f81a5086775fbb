"""THE writer of vial status (the vial pipeline of ``batches.lifecycle``): allocation, release, shipping,
receipt and destruction all go through ``vials_set_status``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from cmlims import roles
from cmlims.audit import audited_bulk_update, audited_update
from cmlims.exceptions import Conflict

from ..lifecycle import VIAL_PIPELINE
from ..locks import vials_lock
from ..models import CMLot, Vial


@transaction.atomic
def vials_set_status(*, vials: Sequence[Vial], to: str, actor, reason: str = "", **changes: Any) -> list[Vial]:
    """Move ``vials`` to ``to`` (with ``changes`` to other fields) and audit it; all or nothing.

    The vials are locked here (a caller that already holds them, after their lots, does not wait). A vial
    the pipeline does not allow is refused with every other one: 409 with ``vials`` as ``{serial, reason}``.
    """
    rule = VIAL_PIPELINE.rule(to)
    roles.require_role(actor, rule.roles, f"Moving vials to {to}")
    locked = vials_lock(pks=[v.pk for v in vials])
    refusals = []
    for vial in locked:
        unmet = VIAL_PIPELINE.unmet_conditions(vial, to, actor)
        if unmet:
            refusals.append({"serial": vial.serial, "reason": "; ".join(c["detail"] for c in unmet)})
    if refusals:
        message = (f"vial {locked[0].serial} is {locked[0].status}" if len(locked) == 1
                   else f"{len(refusals)} vial(s) cannot be {to}; nothing was changed.")
        raise Conflict(message, code=rule.refusal_code, vials=refusals)
    if len(locked) == 1:
        return [audited_update(locked[0], actor=actor, reason=reason, status=to, **changes)]
    for vial in locked:
        vial.status = to
        for name, value in changes.items():
            setattr(vial, name, value)
    audited_bulk_update(locked, ["status", *changes], actor=actor, reason=reason)
    return locked


def vials_move_to_released_stock(*, lot: CMLot, actor, reason: str) -> list[Vial]:
    """At release (inside ``lot_set_status_signed``, the lot locked): every vial of ``lot`` kept in a quarantine
    store that names its released-stock store moves there, one audit entry each, in the same transaction."""
    # One locked read brings each vial's store with it (joined, not locked): where it goes is known from there.
    vials = vials_lock(Vial.objects.filter(lot=lot, voided_at__isnull=True,
                                           storage_location__released_stock_location__isnull=False)
                       .select_related("storage_location"))
    for vial in vials:
        vial.storage_location_id = vial.storage_location.released_stock_location_id
    if vials:
        audited_bulk_update(vials, ["storage_location"], actor=actor, reason=reason)
    return vials
