"""The shipment status pipeline, declared once on ``cmlims.pipeline``: the services, the admin's step
buttons and the API's allowed transitions all read it.

draft → packed → shipped → delivered → (receipt_on_hold →) received; draft | packed → cancelled.
Activities that keep the status (allocating, uploading logger data) name the statuses they need.
Written only by ``batches.shipping.services.status.shipment_set_status``.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from batches.shipping.models import Shipment, ShipmentStatus, TemperatureLog
from cmlims import roles
from cmlims.exceptions import Conflict
from cmlims.investigations.models import Disposition, Investigation, Kind
from cmlims.investigations.models import Status as InvestigationStatus
from cmlims.pipeline import Condition, Pipeline, Rule

S = ShipmentStatus
COORDINATOR = frozenset({roles.SHIPPING_COORDINATOR})
ORDER = list(S.values)  # the statuses in pipeline order, for messages that list several

ALLOCATING, RELEASING, CHANGING = "allocating vials", "releasing vials", "changing the shipment"
LOGGING, LABELLING, LISTING = "uploading logger data", "printing the shipping label", "printing the packing list"
LEFT_SITE = frozenset({S.SHIPPED, S.DELIVERED, S.RECEIPT_ON_HOLD, S.RECEIVED})


def _in_order(states) -> list[str]:
    return sorted(states, key=ORDER.index)


def _wrong_status(pipeline: Pipeline, shipment: Shipment, rule: Rule) -> Condition:
    if rule.to == S.CANCELLED and shipment.status in LEFT_SITE:
        return {"code": "shipment_status",
                "detail": f"status is {shipment.status}; only draft or packed shipments can be cancelled"}
    return {"code": "shipment_status",
            "detail": f"status is {shipment.status}; {rule.doing} needs {' or '.join(_in_order(rule.from_states))}"}


SHIPMENT_PIPELINE = Pipeline(
    "shipment",
    object_type="shipping.shipment",
    rules=[
        Rule(S.PACKED, frozenset({S.DRAFT}), COORDINATOR, action="packing", refusal_code="not_ready",
             refusal_message="{subject} cannot be packed yet.",
             description="vials in the shipper with its coolant (and logger); custody event \"packed by\""),
        Rule(S.SHIPPED, frozenset({S.PACKED}), COORDINATOR, signed=True, action="shipping",
             description="handed to the courier, signed \"shipped\"; its vials become shipped"),
        Rule(S.DELIVERED, frozenset({S.SHIPPED}), COORDINATOR, action="recording the delivery",
             description="the courier's proof of delivery"),
        Rule(S.RECEIPT_ON_HOLD, frozenset({S.DELIVERED}), COORDINATOR, action=LOGGING,
             description="the logger file shows a temperature excursion: receipt waits for its investigation"),
        Rule(S.RECEIVED, frozenset({S.DELIVERED, S.RECEIPT_ON_HOLD}), COORDINATOR, signed=True,
             action="confirming receipt", refusal_code="receipt_blocked",
             refusal_message="Receipt of {subject} cannot be confirmed yet.",
             description="receipt confirmed, signed \"received\"; its vials become received"),
        Rule(S.CANCELLED, frozenset({S.DRAFT, S.PACKED}), COORDINATOR, action="cancelling",
             description="cancelled with a reason before it left the site; its vials go back to available"),
    ],
    state_condition=_wrong_status,
    activities={
        ALLOCATING: frozenset({S.DRAFT}),
        RELEASING: frozenset({S.DRAFT}),
        CHANGING: frozenset({S.DRAFT}),
        LOGGING: frozenset({S.DELIVERED, S.RECEIPT_ON_HOLD}),
        LABELLING: frozenset({S.DRAFT, S.PACKED}),
        LISTING: frozenset(S.values) - {S.CANCELLED},
    },
)


def shipment_state_refusal(shipment: Shipment, to: str, conditions: list[Condition]) -> Conflict:
    """The 409 ``invalid_state`` when the shipment is not where ``to`` (a target or an activity) needs it."""
    rule = (SHIPMENT_PIPELINE.activity_rule(to) if to in SHIPMENT_PIPELINE.activities
            else SHIPMENT_PIPELINE.rule(to))
    if rule.to == S.CANCELLED and shipment.status in LEFT_SITE:
        message = f"{shipment} is {shipment.get_status_display()}: it left the site and cannot be cancelled."
    else:
        names = " or ".join(S(s).label for s in _in_order(rule.from_states))
        message = f"{shipment} is {shipment.get_status_display()}: {rule.doing} needs it {names}."
    return Conflict(message, code="invalid_state", conditions=conditions)


def shipment_require(shipment: Shipment, to: str) -> None:
    """Refuse (409 ``invalid_state``) unless ``shipment`` is in a status that ``to`` starts from."""
    conditions = SHIPMENT_PIPELINE.state_conditions(shipment, to)
    if conditions:
        raise shipment_state_refusal(shipment, to, conditions)


def shipment_investigations(shipment: Shipment):
    """Every excursion investigation ever linked to the shipment: through any of its logger files, voided
    ones included (a replacement file must not hide one), or opened on the shipment itself."""
    log_ids = TemperatureLog.objects.filter(shipment=shipment, investigation__isnull=False).values("investigation_id")
    on_shipment = Q(content_type=ContentType.objects.get_for_model(Shipment), object_id=str(shipment.pk),
                    kind=Kind.TEMPERATURE_EXCURSION)
    return Investigation.objects.filter(Q(pk__in=log_ids) | on_shipment).order_by("pk")


def receipt_conditions(shipment: Shipment, actor=None) -> list[Condition]:
    """What stops receipt: no logger data yet, an excursion investigation still open (rule 6), or one closed
    with the product found not usable (the consignee may not accept it; it is returned or destroyed).
    Investigations govern receipt whether or not the file that opened them was replaced since."""
    conditions = []
    if not TemperatureLog.objects.filter(shipment=shipment, voided_at__isnull=True).exists():
        conditions.append({"code": "temperature_log_missing",
                           "detail": "upload the temperature logger file before confirming receipt"})
    for inv in shipment_investigations(shipment):
        if inv.status != InvestigationStatus.CLOSED:
            conditions.append({"code": "excursion_investigation_open", "detail": f"{inv} is open"})
        elif inv.product_disposition == Disposition.NOT_USABLE:
            conditions.append({"code": "excursion_product_not_usable",
                               "detail": f"{inv} concluded the product is not usable: {inv.conclusion}"})
    return conditions


SHIPMENT_PIPELINE.register_guard(S.RECEIVED, receipt_conditions)
