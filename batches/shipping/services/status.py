"""THE writer of a shipment's status (the pipeline of ``batches.shipping.lifecycle``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction

from batches.shipping.lifecycle import SHIPMENT_PIPELINE, shipment_state_refusal
from batches.shipping.locks import shipment_lock
from batches.shipping.models import Shipment
from cmlims import roles
from cmlims.audit import Action, audited_update
from cmlims.exceptions import Conflict
from cmlims.pipeline import Condition


@transaction.atomic
def shipment_set_status(
    *, shipment: Shipment, to: str, actor, reason: str = "", conditions: Sequence[Condition] = (),
    signed: bool = False, **changes: Any,
) -> Shipment:
    """Lock the shipment, check the role and EVERY unmet condition (the rule's, its guards' and the step's
    own ``conditions``), then write ``to`` with ``changes`` and its "transitioned" audit entry.

    409 ``invalid_state`` when the status is wrong (every other unmet condition listed after it), else the
    rule's refusal code. Signed targets (shipped, received) come only from the step services that verified
    the signer's credentials first (``signed=True``); they record the signature after this write.
    """
    rule = SHIPMENT_PIPELINE.rule(to)
    roles.require_role(actor, rule.roles, f"Moving a shipment to {to}")
    if rule.signed and not signed:
        raise Conflict(f"{to} needs the coordinator's electronic signature", code="signature_required",
                       conditions=[{"code": "signature_required", "detail": f"{to} is reached only by signing"}])
    locked = shipment_lock(shipment)  # the caller usually holds it already: re-reading it does not wait
    unmet = [*SHIPMENT_PIPELINE.unmet_conditions(locked, to, actor), *conditions]
    if SHIPMENT_PIPELINE.state_conditions(locked, to):
        raise shipment_state_refusal(locked, to, unmet)
    if unmet:
        raise SHIPMENT_PIPELINE.refusal(locked, to, unmet)
    return audited_update(locked, actor=actor, action=Action.TRANSITIONED, reason=reason, status=to, **changes)
