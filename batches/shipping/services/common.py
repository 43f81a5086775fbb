"""What the shipping services share: the role check, status and rule-4 checks (locks: ``batches.shipping.locks``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import timezone

from batches.models import CMLot, Vial
from batches.selectors import lot_rule4_conditions
from cmlims import roles
from cmlims.exceptions import Conflict, field_error


def require_coordinator(actor, action: str) -> None:
    roles.require_role(actor, roles.SHIPPING_COORDINATOR, action)


def when(value: dt.datetime | None, field: str, *, not_before: dt.datetime | None = None) -> dt.datetime:
    """When a hand-off happened: now by default; aware, not in the future, not before the previous step."""
    now = timezone.now()
    if value is None:
        return now
    if timezone.is_naive(value):
        raise field_error(field, "must include a UTC offset (times are stored in UTC)")
    if value > now + dt.timedelta(minutes=5):
        raise field_error(field, "cannot be in the future (a hand-off is recorded after it happened)")
    if not_before is not None and value < not_before:
        raise field_error(field, f"cannot be before the previous step ({not_before:%Y-%m-%d %H:%M} UTC)")
    return value


def lot_shippable_conditions(lot: CMLot, *, product_id: int, today: dt.date) -> list[dict]:
    """Rule 4 for a lot, as {code, detail}: the same definition that guards final labels (one rule, one place),
    plus "of the shipment's product"."""
    conditions = lot_rule4_conditions(lot, today=today)
    if lot.product_id != product_id:
        conditions.insert(0, {"code": "other_product",
                              "detail": f"lot {lot.lot_number} is of another product than the shipment"})
    return conditions


def rule4_refusal(vial: Vial, *, product_id: int, today: dt.date) -> str | None:
    """Why ``vial`` (with its lot loaded) may not go into a shipment of ``product_id`` (rule 4), or None."""
    if vial.voided_at is not None:
        return "vial record is voided"
    conditions = lot_shippable_conditions(vial.lot, product_id=product_id, today=today)
    return "; ".join(f"{c['code'].replace('_', ' ')}: {c['detail']}" for c in conditions) or None


def vials_refused(refusals: Iterable[dict], *, action: str) -> Conflict:
    refusals = list(refusals)
    return Conflict(
        f"{len(refusals)} vial(s) cannot be {action}; nothing was changed.",
        code="vials_refused",
        vials=refusals,
    )
