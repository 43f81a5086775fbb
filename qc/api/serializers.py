"""Request shapes (validation only) and response bodies of the QC API. No business logic here."""

from __future__ import annotations

from rest_framework import serializers

from cmlims.api.fields import AwareDateTimeField
from cmlims.api.parsing import SignatureInput
from cmlims.audit import to_jsonable
from cmlims.esign.services import signature_manifest
from qc.models import QCResult, SpecItem


class SignOffInput(SignatureInput):
    audit_reviewed_through = serializers.IntegerField(
        required=False, allow_null=True, min_value=0,
        help_text="the newest audit entry of the lot you reviewed (see GET .../signoff/); confirms the review",
    )


class HoldReasonInput(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True)


class AuditReviewInput(serializers.Serializer):
    reviewed_through = serializers.IntegerField(min_value=0)


class ResultInput(serializers.Serializer):
    lot_number = serializers.CharField()
    test = serializers.CharField()
    value = serializers.CharField()
    unit = serializers.CharField(required=False, allow_blank=True, default="")
    analyst = serializers.CharField(required=False, allow_blank=True, default="",
                                    help_text="user name of who performed the test (default: you)")
    tested_at = AwareDateTimeField(help_text="ISO 8601 with a UTC offset")
    instrument = serializers.CharField(required=False, allow_blank=True, default="")
    attachment = serializers.FileField(required=False, allow_null=True)
    retest_of = serializers.IntegerField(required=False, allow_null=True)
    supersedes = serializers.IntegerField(required=False, allow_null=True, help_text="correct this result")
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="required with supersedes, and for a late entry (tested more than "
                                             "CMLIMS_LATE_ENTRY_HOURS ago)")


class SpecificationListQuery(serializers.Serializer):
    product = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="product id")


class ImportInput(serializers.Serializer):
    file = serializers.FileField()


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


def spec_item_body(item: SpecItem) -> dict:
    return {
        "id": item.pk, "test": item.test, "method": item.method, "unit": item.unit, "limit_kind": item.limit_kind,
        "lower": to_jsonable(item.lower), "upper": to_jsonable(item.upper), "allowed_values": item.allowed_values,
        "passing_values": item.passing_values, "mandatory": item.mandatory, "demo_limit": item.demo_limit,
        "criterion": item.criterion,
    }


def result_body(result: QCResult, *, counts: bool | None = None, approval_status=None) -> dict:
    body = {
        "id": result.pk,
        "lot_number": result.lot.lot_number,
        "test": result.spec_item.test,
        "spec_item": result.spec_item_id,
        "value_entered": result.value_entered,
        "unit_entered": result.unit_entered,
        "value": to_jsonable(result.value),
        "unit": result.spec_item.unit,
        "qualitative_value": result.qualitative_value,
        "passed": result.passed,
        "verdict": result.verdict,
        "criterion": result.spec_item.criterion,
        "analyst": _username(result.analyst),
        "instrument": result.instrument,
        "tested_at": to_jsonable(result.tested_at),
        "entered_by": _username(result.entered_by),
        "entered_at": to_jsonable(result.entered_at),
        "source": result.source,
        "status": result.status,
        "supersedes": result.supersedes_id,
        "correction_reason": result.correction_reason,
        "retest_of": result.retest_of_id,
        "attachment": result.attachment.name or None,
        "attachment_sha256": result.attachment_sha256 or None,
        "approval": None,
        "invalidation": None,
        "imported_from": result.imported_from_id,
    }
    if result.approval_id:
        body["approval"] = signature_manifest(result.approval, approval_status)
        body["approval"]["username"] = _username(result.approved_by)
    if result.invalidation_id:
        body["invalidation"] = signature_manifest(result.invalidation)
        body["invalidation"]["username"] = _username(result.invalidated_by)
    if counts is not None:
        body["counts"] = counts
    return body
