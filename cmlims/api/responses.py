"""Response bodies the apps share, for the OpenAPI schema only (issue 18 item 2): the error body every failure
answers with, a signature as the API shows it. The views build their bodies
by hand; these serializers say what those bodies hold, so the schema (and schemathesis' response check) can
tell a client exactly what it gets. None of them renders or validates anything (``decimal_text`` writes the
decimals those bodies hold as ``DecimalText`` says them)."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cmlims.esign.models import Meaning


def decimal_text(value: Decimal | None) -> str | None:
    """A decimal in a hand-built body as plain text: "-80", "2.50", "400" (``to_jsonable``, the audit trail's
    canonical form, writes a whole number ending in zeros with an exponent, "-8E+1", which no client reads as
    a temperature)."""
    if value is None:
        return None
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


@extend_schema_field({"type": "string", "format": "decimal", "pattern": r"^-?\d+(?:\.\d+)?$"})
class DecimalText(serializers.CharField):
    """A decimal as plain text ("2.50", "-80"; never a float, never an exponent): what ``decimal_text`` writes."""


class ChainHeadBody(serializers.Serializer):
    """Where the audit chain stood when the record was made."""

    sequence = serializers.IntegerField()
    hash = serializers.CharField()


class SignatureManifestBody(serializers.Serializer):
    """``cmlims.esign.services.signature_manifest``: printed name, UTC time and meaning (11.50); the
    "changed after signing" state where the view recomputes it."""

    id = serializers.IntegerField()
    printed_name = serializers.CharField()
    username = serializers.CharField()
    meaning = serializers.ChoiceField(choices=Meaning.choices)
    reason = serializers.CharField()
    signed_at = serializers.DateTimeField()
    content_sha256 = serializers.CharField()
    field_list_version = serializers.CharField()
    chain_head = ChainHeadBody()
    changed_after_signing = serializers.BooleanField(required=False, help_text="where the view checks it")
    changed_fields = serializers.ListField(child=serializers.CharField(), required=False)


class ConditionBody(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class ErrorBody(serializers.Serializer):
    """Every 4xx answer and the 503 of an unreachable database (``cmlims.api.exceptions``): a code to branch
    on, a message to show, and what the error is about where it has one."""

    code = serializers.CharField(help_text="e.g. invalid, not_found, permission_denied, conflict, throttled")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="field -> its problems (invalid input)")
    conditions = ConditionBody(many=True, required=False, help_text="every unmet condition (409)")
    rows = serializers.ListField(child=serializers.DictField(), required=False,
                                 help_text="a refused file's problems, row by row")
    vials = serializers.ListField(child=serializers.DictField(), required=False,
                                  help_text="the vials refused and why")
    retry_after = serializers.IntegerField(required=False, help_text="seconds (throttled, database_unavailable)")

