"""Request shapes (validation only) and response bodies of the QC API. No business logic here."""

from __future__ import annotations

from rest_framework import serializers

from batches.models import LotStatus
from cmlims.api.fields import AwareDateTimeField
from cmlims.api.parsing import SignatureInput
from cmlims.api.responses import ConditionBody, DecimalText, SignatureManifestBody, decimal_text
from cmlims.audit import to_jsonable
from cmlims.esign.services import signature_manifest
from cmlims.investigations.api import InvestigationSerializer
from qc.models import LimitKind, QCResult, ResultSource, ResultStatus, SpecItem, SpecStatus


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
        "lower": decimal_text(item.lower), "upper": decimal_text(item.upper), "allowed_values": item.allowed_values,
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
        "value": decimal_text(result.value),
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


# --- response bodies (the schema's; the functions above and the views build them) -----------------------


class SpecItemBody(serializers.Serializer):
    """``spec_item_body``: one test of a specification and its limit."""

    id = serializers.IntegerField()
    test = serializers.CharField()
    method = serializers.CharField()
    unit = serializers.CharField()
    limit_kind = serializers.ChoiceField(choices=LimitKind.choices)
    lower = DecimalText(allow_null=True)
    upper = DecimalText(allow_null=True)
    allowed_values = serializers.ListField(child=serializers.CharField(), help_text="qualitative tests")
    passing_values = serializers.ListField(child=serializers.CharField(), help_text="qualitative tests")
    mandatory = serializers.BooleanField()
    demo_limit = serializers.BooleanField()
    criterion = serializers.CharField(help_text="the limit in words, e.g. ≤ 0.5 EU/mL")


class ResultBody(serializers.Serializer):
    """``result_body``: one QC result, its verdict against the specification item, and its signatures."""

    id = serializers.IntegerField()
    lot_number = serializers.CharField()
    test = serializers.CharField()
    spec_item = serializers.IntegerField()
    value_entered = serializers.CharField()
    unit_entered = serializers.CharField()
    value = DecimalText(allow_null=True, help_text="in the specification's unit; null for a qualitative test")
    unit = serializers.CharField()
    qualitative_value = serializers.CharField()
    passed = serializers.BooleanField()
    verdict = serializers.ChoiceField(choices=["pass", "fail"])
    criterion = serializers.CharField()
    analyst = serializers.CharField(allow_null=True)
    instrument = serializers.CharField()
    tested_at = serializers.DateTimeField()
    entered_by = serializers.CharField(allow_null=True)
    entered_at = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=ResultSource.choices)
    status = serializers.ChoiceField(choices=ResultStatus.choices)
    supersedes = serializers.IntegerField(allow_null=True, help_text="the result this one corrects")
    correction_reason = serializers.CharField()
    retest_of = serializers.IntegerField(allow_null=True)
    attachment = serializers.CharField(allow_null=True, help_text="the stored raw-data file")
    attachment_sha256 = serializers.CharField(allow_null=True)
    approval = SignatureManifestBody(allow_null=True)
    invalidation = SignatureManifestBody(allow_null=True)
    imported_from = serializers.IntegerField(allow_null=True, help_text="the import's original file id")
    counts = serializers.BooleanField(required=False, help_text="in a lot's results: whether it counts for the lot")


class LotSpecificationBody(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    version = serializers.IntegerField()
    effective_from = serializers.DateTimeField(allow_null=True)
    items = SpecItemBody(many=True)


class LotResultsBody(serializers.Serializer):
    """The lot's specification (the version in force when it was pooled; null if none) and every result."""

    lot_number = serializers.CharField()
    specification = LotSpecificationBody(allow_null=True)
    results = ResultBody(many=True)


class ImportedFileBody(serializers.Serializer):
    id = serializers.IntegerField()
    file_name = serializers.CharField()
    stored_as = serializers.CharField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()


class ImportBody(serializers.Serializer):
    imported = serializers.IntegerField(help_text="results recorded")
    original = ImportedFileBody(help_text="the file as received")


class LotHoldBody(serializers.Serializer):
    lot_number = serializers.CharField()
    on_hold = serializers.BooleanField()
    hold_reason = serializers.CharField()
    held_at = serializers.DateTimeField(allow_null=True)


class AuditReviewBody(serializers.Serializer):
    """A confirmed review of the lot's audit trail (Annex 11 §9)."""

    lot_number = serializers.CharField()
    reviewed_through = serializers.IntegerField()
    entries_reviewed = serializers.IntegerField()
    reviewer = serializers.CharField()
    reviewed_at = serializers.DateTimeField()


class PreviousReviewBody(serializers.Serializer):
    reviewer = serializers.CharField()
    reviewed_through = serializers.IntegerField()
    reviewed_at = serializers.DateTimeField()


class AuditEntryBody(serializers.Serializer):
    sequence = serializers.IntegerField()
    at = serializers.DateTimeField()
    user = serializers.CharField()
    action = serializers.CharField()
    object = serializers.CharField(help_text="type:id")
    repr = serializers.CharField()
    changes = serializers.JSONField(help_text="field -> [old, new] as recorded")
    reason = serializers.CharField()


class AuditSinceReviewBody(serializers.Serializer):
    previous_review = PreviousReviewBody(allow_null=True)
    entries_since = AuditEntryBody(many=True)
    confirm_through = serializers.IntegerField(help_text="send as audit_reviewed_through")


class SignOffChecklistBody(serializers.Serializer):
    """``signoff_body``: what the officer sees before signing."""

    lot_number = serializers.CharField()
    status = serializers.ChoiceField(choices=LotStatus.choices)
    on_hold = serializers.BooleanField()
    release_conditions = ConditionBody(many=True, help_text="every unmet release condition ([] = may release)")
    audit_review = AuditSinceReviewBody()
    investigations = InvestigationSerializer(many=True)
    signatures = SignatureManifestBody(many=True)


class SignOffBody(serializers.Serializer):
    lot_number = serializers.CharField()
    status = serializers.ChoiceField(choices=LotStatus.choices)
    signature = SignatureManifestBody()


class SpecificationBody(serializers.Serializer):
    """A specification version with its items and approval signature."""

    id = serializers.IntegerField()
    product = serializers.CharField(help_text="the product's name")
    version = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=SpecStatus.choices)
    effective_from = serializers.DateTimeField(allow_null=True)
    approval = SignatureManifestBody(allow_null=True)
    items = SpecItemBody(many=True)


class SpecificationListBody(serializers.Serializer):
    results = SpecificationBody(many=True)
