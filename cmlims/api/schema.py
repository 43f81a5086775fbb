"""The OpenAPI schema drf-spectacular writes from the request serializers, told what those serializers check
and it does not say on its own: decimal texts as the field parses them, label text without printer commands,
and which body format can carry what (a file only in multipart, a JSON body only as JSON)."""

from __future__ import annotations

import copy
import functools
from decimal import Decimal
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance, is_serializer
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from cmlims.patterns import validator_pattern

JSON = "application/json"
NO_NUL_PATTERN = r"^[^\u0000]*$"  # DRF's CharField refuses NUL characters
NOT_BLANK_PATTERN = r"\S"  # a CharField that may not be blank trims whitespace first
NOT_BLANK_NO_NUL_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The texts ``field`` accepts (at least one digit, its places, its sign and magnitude limits) as an
    ECMA pattern; stricter than the field where a limit is not a power of ten, never looser."""
    places = fr"(?:\.\d{{1,{field.decimal_places}}})?" if field.decimal_places else ""
    low, high = field.min_value, field.max_value
    sign = "" if low is not None and Decimal(low) >= 0 else "-?"
    whole_digits = field.max_whole_digits if field.max_whole_digits is not None else 20
    if high is not None and Decimal(high) >= 1:
        # below the limit's leading power of ten every value fits; the limit itself when it is a whole number
        whole_digits = min(whole_digits, len(str(int(high))) - 1)
    whole = fr"[1-9]\d{{0,{max(whole_digits - 1, 0)}}}" if low is not None and Decimal(low) >= 1 \
        else fr"\d{{1,{max(whole_digits, 1)}}}"
    if whole_digits == 0:
        whole = "0" if low is None or Decimal(low) < 1 else None
    positive = ""
    if low is not None and 0 < Decimal(low) < 1:
        if field.decimal_places and Decimal(low) <= Decimal(1).scaleb(-field.decimal_places):
            positive = r"(?!0*(?:\.0*)?$)"  # any value of its places above zero: not all zeros
        elif whole_digits:
            whole = fr"[1-9]\d{{0,{max(whole_digits - 1, 0)}}}"  # from 1 up: stricter than the field
    alternatives = [whole + places] if whole else []
    if high is not None and Decimal(high) >= 1 and Decimal(high) == int(high):
        zeros = fr"(?:\.0{{1,{field.decimal_places}}})?" if field.decimal_places else ""
        alternatives.append(f"{int(high)}{zeros}")
    return f"^{positive}{sign}(?:{'|'.join(alternatives)})$"


def _string_patterns(field: serializers.Field, schema: dict) -> list[str]:
    """Every pattern a string value of ``field`` must match: its own (a model regex), a decimal's, those
    its validators state (``cmlims.patterns``), and the NUL and blank refusals DRF's CharField makes."""
    if isinstance(field, serializers.DecimalField):
        return [decimal_pattern(field)]
    patterns = [schema["pattern"]] if schema.get("pattern") else []
    patterns += [pattern for pattern in map(validator_pattern, field.validators) if pattern]
    if isinstance(field, serializers.CharField) and "enum" not in schema:
        if not field.allow_blank:
            schema["minLength"] = max(schema.get("minLength", 0), 1)
        if not patterns:  # the stated ones refuse NUL already
            patterns.append(NO_NUL_PATTERN if field.allow_blank else NOT_BLANK_NO_NUL_PATTERN)
        elif not field.allow_blank and field.trim_whitespace:
            patterns.append(NOT_BLANK_PATTERN)
    return list(dict.fromkeys(patterns))


def request_alternatives(name: str, alternatives: list[type[serializers.Serializer]] | dict[str, type],
                         *, by: str | None = None) -> PolymorphicProxySerializer:
    """The body of an operation that takes one of several shapes (``oneOf``): the serializer the view
    validates with accepts exactly their union. ``by`` names the field that tells them apart (then
    ``alternatives`` maps its values to the shapes)."""
    return PolymorphicProxySerializer(component_name=name, serializers=alternatives, resource_type_field_name=by)


def alternative(base: type[serializers.Serializer], name: str, *, required: tuple[str, ...] = (),
                without: tuple[str, ...] = (), **fields: serializers.Field) -> type[serializers.Serializer]:
    """One shape of ``base``'s body for ``request_alternatives``: the fields ``required`` required (and not
    null), those ``without`` left out, others replaced by ``fields``. For the schema only."""
    attrs: dict[str, Any] = dict.fromkeys(without)
    for field_name in required:
        declared = base._declared_fields[field_name]
        kwargs = {key: value if key == "validators" else copy.deepcopy(value)
                  for key, value in declared._kwargs.items() if key != "default"}
        attrs[field_name] = type(declared)(*copy.deepcopy(declared._args), **{**kwargs, "required": True,
                                                                              "allow_null": False})
    return type(name, (base,), {**attrs, **fields, "__doc__": base.__doc__})


@functools.cache  # one class per step: the schema's component registry tells classes apart by identity
def signing_request(base: type[serializers.Serializer], meaning: str) -> type[serializers.Serializer]:
    """What the schema says ``base`` (a ``SignatureInput``) takes when the step signs with ``meaning``: that
    meaning if one is sent, and a reason where the meaning needs one (``cmlims.esign`` checks both)."""
    from cmlims.esign.services import REASON_REQUIRED

    meaning = str(meaning)  # the value, also of a Meaning member (the YAML writer takes no enum members)
    sent = base._declared_fields["meaning"]
    fields: dict[str, serializers.Field] = {"meaning": serializers.ChoiceField(choices=[meaning],
                                                                               required=sent.required)}
    if meaning in REASON_REQUIRED:
        fields["reason"] = serializers.CharField(help_text=f"required to sign '{meaning}'")
    # named by the meaning: each meaning is signed through one body (a second would be a name clash)
    return alternative(base, f"{meaning.title().replace(' ', '')}SignatureInput", **fields)


def file_fields(serializer: Any) -> list[str]:
    fields = getattr(serializer, "fields", {})
    return [name for name, field in fields.items() if isinstance(field, serializers.FileField)]


class CmlimsAutoSchema(AutoSchema):
    """Request bodies and query parameters say what their serializers accept; a view whose answer its request
    serializer does not describe says what it answers (``response_schema``); every 4xx is the error body."""

    _mapping_direction = "response"

    def get_response_serializers(self):
        """``view.response_schema(method) -> {status: serializer}`` where one view class serves several records
        or steps (the manufacturing records, the signed approvals): one answer per route, as ``extend_schema``
        gives it. ``extend_schema(responses=...)`` on a method still wins."""
        describe = getattr(self.view, "response_schema", None)
        return describe(self.method) if describe is not None else super().get_response_serializers()

    def _get_response_bodies(self, direction="response"):
        """Every operation's errors: any 4xx is the one error body (``cmlims.api.exceptions``), so a client
        (and schemathesis' response check) knows its shape too."""
        from cmlims.api.responses import ErrorBody

        responses = super()._get_response_bodies(direction)
        if "4XX" not in responses:
            responses["4XX"] = self._get_response_for_code(ErrorBody, "4XX", [JSON], direction)
            responses["4XX"]["description"] = "refused: code, message, and what it is about (fields, conditions)"
        if "503" not in responses:  # cmlims.api.exceptions.database_unavailable: any operation, while it lasts
            responses["503"] = self._get_response_for_code(ErrorBody, "503", [JSON], direction)
            responses["503"]["description"] = ("database_unavailable: the database is unreachable for a moment "
                                               "(a restart, a failover); nothing was done, retry after Retry-After")
            responses["503"]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                           "description": "seconds to wait before retrying"}}
        return responses

    def _map_basic_serializer(self, serializer, direction):
        outer, self._mapping_direction = self._mapping_direction, direction
        try:
            return super()._map_basic_serializer(serializer, direction)
        finally:
            self._mapping_direction = outer

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if schema.get("readOnly") or self._mapping_direction != "request":
            return
        if schema.get("type") == "array" and getattr(field, "allow_empty", True) is False:
            schema["minItems"] = max(schema.get("minItems", 0), 1)
        if schema.get("type") == "string" and schema.get("format") not in ("binary", "date", "date-time", "uuid"):
            patterns = _string_patterns(field, schema)
            if patterns:
                schema["pattern"], *more = patterns
                if more:
                    schema["allOf"] = [{"pattern": pattern} for pattern in more]

    def _get_request_body(self, direction="request"):
        """A body with a file field is multipart only; any other is JSON only: form encodings cannot carry
        nested lists, nulls or numbers as the serializers read them (the parsers still accept them)."""
        body = super()._get_request_body(direction)
        if not body:
            return body
        serializer = self.get_request_serializer()
        if not is_serializer(serializer):
            return body
        content, instance = body["content"], force_instance(serializer)
        files = file_fields(instance)
        if not files:
            body["content"] = {media: value for media, value in content.items() if media == JSON} or content
        elif JSON in content:
            # the same body without its files as JSON; the files only in multipart
            schema = self._map_basic_serializer(instance, direction)
            for name in files:
                schema["properties"].pop(name, None)
                if name in schema.get("required", []):
                    schema["required"].remove(name)
            body["content"] = {JSON: {"schema": schema}, **{media: value for media, value in content.items()
                                                            if media == "multipart/form-data"}}
        return body
