"""Request shapes (validation only) and response bodies of the shipping API. No business logic here."""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxLengthValidator
from rest_framework import serializers

from batches.models import LotStatus, VialStatus
from batches.shipping.lifecycle import SHIPMENT_PIPELINE
from batches.shipping.models import Consignee, CustodyKind, Shipment, ShipmentStatus, TemperatureLog
from batches.shipping.selectors import Recall
from batches.shipping.services.allocation import MAX_VIALS_PER_REQUEST
from batches.shipping.signed import shipment_signature_manifests
from cmlims.api.fields import AwareDateTimeField
from cmlims.api.parsing import SignatureInput
from cmlims.api.responses import DecimalText, SignatureManifestBody, decimal_text
from cmlims.api.schema import alternative, request_alternatives
from cmlims.audit import to_jsonable
from cmlims.documents.api.views import LabelReconciliationRowBody
from cmlims.investigations.models import Status as InvestigationStatus


def _model_checks(name: str) -> list:
    """The consignee field's own validators (ISO code, label text) but its length, which the input states:
    the schema then says them, and a refusal names the field as the model's would."""
    return [check for check in Consignee._meta.get_field(name).validators
            if not isinstance(check, MaxLengthValidator)]


class ConsigneeInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=_model_checks("name"))
    kind = serializers.ChoiceField(choices=Consignee.Kind.choices, required=False)
    address_line1 = serializers.CharField(max_length=200, validators=_model_checks("address_line1"))
    address_line2 = serializers.CharField(max_length=200, required=False, allow_blank=True,
                                          validators=_model_checks("address_line2"))
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True,
                                        validators=_model_checks("postal_code"))
    city = serializers.CharField(max_length=100, validators=_model_checks("city"))
    country = serializers.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. DE",
                                    validators=_model_checks("country"))
    contact_name = serializers.CharField(max_length=200)
    contact_phone = serializers.CharField(max_length=50, required=False, allow_blank=True)
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    licence_number = serializers.CharField(max_length=100, required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)


class ShipmentInput(serializers.Serializer):
    consignee = serializers.IntegerField(help_text="consignee id")
    product = serializers.IntegerField(help_text="product id")
    courier = serializers.CharField(max_length=100, required=False, allow_blank=True)
    tracking_number = serializers.CharField(max_length=60, required=False, allow_blank=True)
    shipper_type = serializers.ChoiceField(choices=Shipment.ShipperType.choices, required=False, allow_blank=True)
    coolant = serializers.ChoiceField(choices=Shipment.Coolant.choices, required=False, allow_blank=True)
    logger_serial = serializers.CharField(max_length=60, required=False, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)


class ShipmentUpdateInput(ShipmentInput):
    """A draft shipment's PATCH: ``ShipmentInput`` but the product, which is fixed when the shipment is made (the
    schema does not offer it; a body that names it is refused by name)."""

    product = None
    consignee = serializers.IntegerField(help_text="consignee id", required=False)

    def validate(self, attrs):
        if "product" in self.initial_data:
            raise serializers.ValidationError({"product": ["cannot be changed here"]})
        return attrs


class ShipmentListQuery(serializers.Serializer):
    status = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                   help_text="only shipments in these statuses (repeat the parameter)")


_COUNT_RANGE = f"must be a whole number from 1 to {MAX_VIALS_PER_REQUEST}"


class AllocateInput(serializers.Serializer):
    """Either ``vials`` or ``count`` (with ``lot`` optionally): the schema gives the two shapes
    (``ALLOCATE_REQUEST``)."""

    vials = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False,
                                  max_length=MAX_VIALS_PER_REQUEST,
                                  error_messages={"max_length": f"at most {MAX_VIALS_PER_REQUEST} per request"},
                                  help_text="serials or scanner input (GS1 element strings, ]d2 prefix and GS ok)")
    lot = serializers.CharField(required=False, help_text="with count: take from this lot")
    count = serializers.IntegerField(required=False, min_value=1, max_value=MAX_VIALS_PER_REQUEST,
                                     error_messages={"min_value": _COUNT_RANGE, "max_value": _COUNT_RANGE},
                                     help_text="first-expiry-first-out")

    def validate(self, attrs):
        if ("vials" in attrs) == ("count" in attrs):
            raise serializers.ValidationError({"vials": ["give either vials, or count (optionally with lot)"]})
        if "lot" in attrs and "count" not in attrs:
            raise serializers.ValidationError({"count": ["required with lot"]})
        return attrs


ALLOCATE_REQUEST = request_alternatives("AllocateInput", [
    alternative(AllocateInput, "AllocateVialsInput", required=("vials",), without=("lot", "count")),
    alternative(AllocateInput, "AllocateCountInput", required=("count",), without=("vials",)),
])


class ReleaseInput(serializers.Serializer):
    vials = serializers.ListField(child=serializers.CharField(trim_whitespace=False), required=False,
                                  help_text="omit to release every vial of the draft")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class PackInput(serializers.Serializer):
    shipper_type = serializers.ChoiceField(choices=Shipment.ShipperType.choices, required=False)
    coolant = serializers.ChoiceField(choices=Shipment.Coolant.choices, required=False)
    logger_serial = serializers.CharField(max_length=60, required=False, allow_blank=True)
    occurred_at = AwareDateTimeField(required=False, help_text="ISO 8601 with offset; default now")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ShipmentSignatureInput(SignatureInput):
    """The signature components as for lot release; shipping asks for the meaning to be stated."""

    meaning = serializers.CharField()
    occurred_at = AwareDateTimeField(required=False)
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class ShipInput(ShipmentSignatureInput):
    courier = serializers.CharField(max_length=100, required=False)
    tracking_number = serializers.CharField(max_length=60, required=False)
    party = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                  help_text="courier's driver or agent taking the shipment")


class ReceiveInput(ShipmentSignatureInput):
    received_by_name = serializers.CharField(max_length=200, help_text="the consignee's person who received it")


class DeliverInput(serializers.Serializer):
    occurred_at = AwareDateTimeField(required=False)
    party = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                  help_text="who signed for it at the consignee (proof of delivery)")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class CancelInput(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True)


class LogUploadInput(serializers.Serializer):
    file = serializers.FileField()
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="required to replace an earlier file")
    # Replacing a file is signed by a QC officer (not the uploader): their own user name and password.
    qc_username = serializers.CharField(required=False, allow_blank=True, default="",
                                        help_text="replacement only: the signing QC officer's user name")
    qc_password = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False,
                                        style={"input_type": "password"},
                                        help_text="replacement only: the signing QC officer's password")
    qc_meaning = serializers.CharField(required=False, allow_blank=True,
                                       help_text='replacement only: if sent, must be "logger file replaced"')


class LabelInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=["pdf", "zpl"], required=False, allow_null=True, default=None,
                                     help_text="pdf when omitted; with a printer, the printer's format")
    printer = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="printer id: the job sends the label there")
    copies = serializers.IntegerField(min_value=1, max_value=10, default=1)
    reprint_reason = serializers.CharField(required=False, allow_blank=True, default="")


# The label goes to a printer (in its format) or comes back as a file (PDF unless ZPL is asked for).
SHIPPING_LABEL_REQUEST = request_alternatives("LabelInput", [
    alternative(LabelInput, "ShippingLabelToPrinterInput", without=("format",),
                printer=serializers.IntegerField(min_value=1, help_text="printer id: the job sends the label there")),
    alternative(LabelInput, "ShippingLabelAsFileInput", without=("printer",)),
])


class LabelDispositionInput(serializers.Serializer):
    disposition = serializers.ChoiceField(choices=["destroyed", "returned"])
    count = serializers.IntegerField(min_value=1, default=1, help_text="shipping labels destroyed or returned")
    reason = serializers.CharField(help_text="why they were destroyed or returned")


# --- bodies ---------------------------------------------------------------------------------------------


def consignee_body(c: Consignee) -> dict[str, Any]:
    return {
        "id": c.pk, "name": c.name, "kind": c.kind, "address_line1": c.address_line1,
        "address_line2": c.address_line2, "postal_code": c.postal_code, "city": c.city, "country": c.country,
        "contact_name": c.contact_name, "contact_phone": c.contact_phone, "contact_email": c.contact_email,
        "licence_number": c.licence_number, "voided": c.voided_at is not None,
    }


def shipment_body(s: Shipment) -> dict[str, Any]:
    return to_jsonable({
        "id": s.pk, "reference": s.reference, "sscc": s.sscc, "status": s.status,
        "consignee": {"id": s.consignee_id, "name": s.consignee.name},
        "product": {"id": s.product_id, "name": s.product.name, "gtin": s.product.gtin},
        "vial_count": getattr(s, "vial_count", None),
        "courier": s.courier, "tracking_number": s.tracking_number, "shipper_type": s.shipper_type,
        "coolant": s.coolant, "logger_serial": s.logger_serial, "notes": s.notes,
        "transport_range_c": {"min": decimal_text(s.transport_temperature_min_c),
                              "max": decimal_text(s.transport_temperature_max_c)},
        "excursion_allowed_minutes": s.transport_excursion_allowed_minutes,
        "created_at": s.created_at, "packed_at": s.packed_at, "shipped_at": s.shipped_at,
        "delivered_at": s.delivered_at, "received_at": s.received_at, "received_by_name": s.received_by_name,
        "cancelled_at": s.cancelled_at, "cancel_reason": s.cancel_reason,
        "allowed_transitions": SHIPMENT_PIPELINE.allowed_targets(s.status, automatic=False),
    })


def log_body(log: TemperatureLog | None) -> dict[str, Any] | None:
    if log is None:
        return None
    return to_jsonable({
        "id": log.pk, "file_name": log.file_name, "file_sha256": log.file_sha256,
        "stored_as": log.original.name or None, "uploaded_at": log.uploaded_at,
        "sample_count": log.sample_count, "first_at": log.first_at, "last_at": log.last_at,
        "min_c": decimal_text(log.min_c), "max_c": decimal_text(log.max_c),
        "range_c": {"min": decimal_text(log.range_min_c), "max": decimal_text(log.range_max_c)},
        "allowed_minutes": log.allowed_minutes, "minutes_outside": decimal_text(log.minutes_outside),
        "excursion": log.excursion,
        "investigation": ({"id": log.investigation_id, "number": log.investigation.number,
                           "status": log.investigation.status} if log.investigation_id else None),
    })


def shipment_detail_body(s: Shipment, signatures) -> dict[str, Any]:
    body = shipment_body(s)
    body["vials"] = [
        {"serial": a.vial.serial, "lot": a.vial.lot.lot_number, "expiry": to_jsonable(a.vial.lot.expiry),
         "status": a.vial.status, "allocated_at": to_jsonable(a.allocated_at)}
        for a in s.live_allocations
    ]
    body["custody"] = [
        {"kind": e.kind, "occurred_at": to_jsonable(e.occurred_at), "recorded_by": e.recorded_by.get_username(),
         "recorded_at": to_jsonable(e.recorded_at), "party": e.party, "notes": e.notes,
         "signature": e.signature_id}
        for e in s.custody
    ]
    body["temperature_log"] = log_body(s.live_logs[0] if s.live_logs else None)
    body["signatures"] = shipment_signature_manifests(s, signatures, [a.vial.serial for a in s.live_allocations])
    return body


def recall_body(recall: Recall) -> dict[str, Any]:
    per_shipment: dict[int, list[str]] = {}
    for v in recall.vials:
        if v.shipment is not None:
            per_shipment.setdefault(v.shipment.pk, []).append(v.serial)
    return to_jsonable({
        "recall_of": {"type": recall.subject_type, "id": recall.subject},
        "summary": {"lots": len(recall.lots), "vials": len(recall.vials), "vials_off_site": recall.vials_off_site,
                    "shipments": len(recall.shipments), "consignees": len(recall.consignees)},
        "lots": [{"lot_number": lot.lot_number, "product": lot.product.name, "status": lot.status,
                  "on_hold": lot.on_hold, "expiry": lot.expiry} for lot in recall.lots],
        "shipments": [{"id": s.pk, "reference": s.reference, "sscc": s.sscc, "status": s.status,
                       "consignee": s.consignee.name, "shipped_at": s.shipped_at, "received_at": s.received_at,
                       "vials": per_shipment.get(s.pk, [])} for s in recall.shipments],
        "consignees": [consignee_body(c) for c in recall.consignees],
        "vials": [{"serial": v.serial, "lot": v.lot_number, "expiry": v.expiry, "status": v.status,
                   "shipment": v.shipment.reference if v.shipment else None,
                   "consignee": v.shipment.consignee.name if v.shipment else None} for v in recall.vials],
    })


# --- response bodies (the schema's; the functions above build them) -------------------------------------


class IdNameBody(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ShipmentProductBody(IdNameBody):
    gtin = serializers.CharField()


class TemperatureRangeBody(serializers.Serializer):
    min = DecimalText(help_text="°C")
    max = DecimalText(help_text="°C")


class ConsigneeBody(serializers.Serializer):
    """``consignee_body``."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Consignee.Kind.choices)
    address_line1 = serializers.CharField()
    address_line2 = serializers.CharField()
    postal_code = serializers.CharField()
    city = serializers.CharField()
    country = serializers.CharField()
    contact_name = serializers.CharField()
    contact_phone = serializers.CharField()
    contact_email = serializers.CharField()
    licence_number = serializers.CharField()
    voided = serializers.BooleanField()


class ShipmentBody(serializers.Serializer):
    """``shipment_body``: a shipment in a list; the times null until the step that sets them."""

    id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    sscc = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=ShipmentStatus.choices)
    consignee = IdNameBody()
    product = ShipmentProductBody()
    vial_count = serializers.IntegerField(allow_null=True, help_text="in lists; null in a shipment's detail")
    courier = serializers.CharField()
    tracking_number = serializers.CharField()
    shipper_type = serializers.ChoiceField(choices=[("", "not set"), *Shipment.ShipperType.choices])
    coolant = serializers.ChoiceField(choices=[("", "not set"), *Shipment.Coolant.choices])
    logger_serial = serializers.CharField()
    notes = serializers.CharField()
    transport_range_c = TemperatureRangeBody()
    excursion_allowed_minutes = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    packed_at = serializers.DateTimeField(allow_null=True)
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    received_by_name = serializers.CharField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
    cancel_reason = serializers.CharField()
    allowed_transitions = serializers.ListField(child=serializers.ChoiceField(choices=ShipmentStatus.choices))


class ShipmentVialBody(serializers.Serializer):
    serial = serializers.CharField()
    lot = serializers.CharField()
    expiry = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=VialStatus.choices)
    allocated_at = serializers.DateTimeField()


class CustodyEventBody(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CustodyKind.choices)
    occurred_at = serializers.DateTimeField()
    recorded_by = serializers.CharField()
    recorded_at = serializers.DateTimeField()
    party = serializers.CharField()
    notes = serializers.CharField()
    signature = serializers.IntegerField(allow_null=True, help_text="signature id, for the signed steps")


class InvestigationBriefBody(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=InvestigationStatus.choices)


class TemperatureLogBody(serializers.Serializer):
    """``log_body``: the logger file's summary against the shipment's transport range."""

    id = serializers.IntegerField()
    file_name = serializers.CharField()
    file_sha256 = serializers.CharField()
    stored_as = serializers.CharField(allow_null=True)
    uploaded_at = serializers.DateTimeField()
    sample_count = serializers.IntegerField()
    first_at = serializers.DateTimeField()
    last_at = serializers.DateTimeField()
    min_c = DecimalText()
    max_c = DecimalText()
    range_c = TemperatureRangeBody()
    allowed_minutes = serializers.IntegerField()
    minutes_outside = DecimalText()
    excursion = serializers.BooleanField()
    investigation = InvestigationBriefBody(allow_null=True, help_text="the excursion's investigation, if any")


class ShipmentDetailBody(ShipmentBody):
    """``shipment_detail_body``: the shipment with its vials, custody, current logger file and signatures."""

    vials = ShipmentVialBody(many=True)
    custody = CustodyEventBody(many=True)
    temperature_log = TemperatureLogBody(allow_null=True)
    signatures = SignatureManifestBody(many=True)


class RecallSubjectBody(serializers.Serializer):
    type = serializers.ChoiceField(choices=["lot", "donor"])
    id = serializers.CharField(help_text="the lot number or donor code")


class RecallSummaryBody(serializers.Serializer):
    lots = serializers.IntegerField()
    vials = serializers.IntegerField()
    vials_off_site = serializers.IntegerField(help_text="in shipments that left the site")
    shipments = serializers.IntegerField()
    consignees = serializers.IntegerField()


class RecallLotBody(serializers.Serializer):
    lot_number = serializers.CharField()
    product = serializers.CharField()
    status = serializers.ChoiceField(choices=LotStatus.choices)
    on_hold = serializers.BooleanField()
    expiry = serializers.DateField(allow_null=True)


class RecallShipmentBody(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField(allow_null=True)
    sscc = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=ShipmentStatus.choices)
    consignee = serializers.CharField()
    shipped_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    vials = serializers.ListField(child=serializers.CharField(), help_text="serials of the recalled vials in it")


class RecallVialBody(serializers.Serializer):
    serial = serializers.CharField()
    lot = serializers.CharField()
    expiry = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=VialStatus.choices)
    shipment = serializers.CharField(allow_null=True, help_text="the shipment's reference; null on site")
    consignee = serializers.CharField(allow_null=True)


class RecallBody(serializers.Serializer):
    """``recall_body``: every lot, vial, shipment and consignee a recall of a lot or donor reaches (rule 9)."""

    recall_of = RecallSubjectBody()
    summary = RecallSummaryBody()
    lots = RecallLotBody(many=True)
    shipments = RecallShipmentBody(many=True)
    consignees = ConsigneeBody(many=True)
    vials = RecallVialBody(many=True)


class ShipmentLabelReconciliationBody(serializers.Serializer):
    shipment = serializers.IntegerField()
    sscc = serializers.CharField(allow_null=True)
    balanced = serializers.BooleanField()
    labels = LabelReconciliationRowBody(many=True)


class ShipmentLabelDispositionBody(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.CharField()
    disposition = serializers.ChoiceField(choices=["destroyed", "returned"])
    count = serializers.IntegerField()
    reason = serializers.CharField()


class ShipmentLabelDispositionsBody(serializers.Serializer):
    recorded = ShipmentLabelDispositionBody(many=True)
    reconciliation = ShipmentLabelReconciliationBody()
