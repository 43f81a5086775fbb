"""Consignees (clinics, distributors): created and changed by the shipping coordinator, voided not deleted."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from batches.shipping.locks import consignee_lock
from batches.shipping.models import Consignee
from batches.shipping.services.common import require_coordinator
from cmlims.audit import audited_create, audited_update, audited_void
from cmlims.exceptions import Conflict, InvalidInput

EDITABLE = (
    "name", "kind", "address_line1", "address_line2", "postal_code", "city", "country", "contact_name",
    "contact_phone", "contact_email", "licence_number",
)


def _refuse_unknown(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(EDITABLE))
    if unknown:
        raise InvalidInput("; ".join(f"{n}: cannot be set here" for n in unknown),
                           fields={n: ["cannot be set here"] for n in unknown})


@transaction.atomic
def consignee_create(*, actor, **values: Any) -> Consignee:
    require_coordinator(actor, "Adding a consignee")
    _refuse_unknown(values)
    return audited_create(Consignee, actor=actor, **values)


@transaction.atomic
def consignee_update(*, consignee: Consignee | int, actor, reason: str = "", **values: Any) -> Consignee:
    require_coordinator(actor, "Changing a consignee")
    _refuse_unknown(values)
    locked = consignee_lock(consignee)
    if locked.voided_at is not None:
        raise Conflict(f"{locked} is voided.", conditions=[{"code": "voided", "detail": locked.void_reason}])
    return audited_update(locked, actor=actor, reason=reason, **values)


@transaction.atomic
def consignee_void(*, consignee: Consignee, actor, reason: str) -> Consignee:
    """No longer supplied: voided with a reason; its shipments keep pointing at it."""
    require_coordinator(actor, "Voiding a consignee")
    return audited_void(consignee_lock(consignee), actor=actor, reason=reason)
