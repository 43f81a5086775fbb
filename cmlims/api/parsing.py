"""The one way an API view reads its input: a DRF ``Serializer`` declared per operation (types and field rules
only; the services decide), validated here. A refusal is the project's 400 ``invalid`` with ``fields`` (the
exception handler shapes it), and drf-spectacular describes the same serializer as the body or the query."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from rest_framework import exceptions, parsers, serializers
from rest_framework.request import Request

from cmlims.api.throttling import body_throttle
from cmlims.exceptions import PayloadTooLarge, UnsupportedMediaType

# What browsers and instrument software call a CSV file (Windows says Excel; curl and some exports octet-stream).
CSV_CONTENT_TYPES = frozenset({"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel",
                               "application/octet-stream"})


class ReasonInput(serializers.Serializer):
    """The optional reason any change may carry (audit trail)."""

    reason = serializers.CharField(required=False, allow_blank=True, default="")


class SignatureInput(serializers.Serializer):
    """The two signature components, every time (11.200(a)), with meaning and reason: every signing operation
    reads these (the meaning, if sent, is checked against the step's by ``cmlims.esign``)."""

    username = serializers.CharField(allow_blank=True)
    password = serializers.CharField(allow_blank=True, trim_whitespace=False, style={"input_type": "password"})
    meaning = serializers.CharField(required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="")

# No input of this API nests deeper than a few levels; Python's JSON decoder gives up (RecursionError) near 1000.
MAX_JSON_DEPTH = 32


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing (400 ``parse_error``) a body nested deeper than ``MAX_JSON_DEPTH`` instead
    of letting the decoder's RecursionError become a 500, or a deep structure reach the services."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels") from None
        if _json_depth(data) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels")
        return data


def _json_depth(data: Any) -> int:
    """How deep ``data`` nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            stack.extend((child, depth) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


def request_parse(
    serializer_class: type[serializers.Serializer], request: Request, *, instance: Any = None,
    partial: bool = False, query: bool = False,
) -> dict[str, Any]:
    """The validated input of ``request`` (its body, or its query string with ``query=True``) as a dict.
    ``instance`` and ``partial`` are for corrections (PATCH) of a model record. A signing or upload body is
    throttled first (cmlims.api.throttling), before it is even validated."""
    if not query:
        body_throttle(request, **_throttle_kinds(serializer_class))
    data = request.query_params if query else request.data
    parsed = serializer_class(instance, data=data, partial=partial)
    parsed.is_valid(raise_exception=True)
    return dict(parsed.validated_data)


@cache
def _throttle_kinds(serializer_class: type[serializers.Serializer]) -> dict[str, bool]:
    """A body that carries a password (a signature's, however named) signs; one with a file field uploads."""
    fields = serializer_class().fields
    return {"signs": any(name == "password" or name.endswith("_password") for name in fields),
            "uploads": any(isinstance(f, serializers.FileField) for f in fields.values())}


def request_reason(request: Request) -> str:
    """The optional ``reason`` of a request whose operation has no other field for it."""
    return request_parse(ReasonInput, request)["reason"]


def csv_upload_check(upload, *, export_hint: str) -> None:
    """413 for a file over ``CMLIMS_MAX_UPLOAD_BYTES`` (a body far over it never gets here: the middleware
    refuses it unread), 415 for a file that says it is not CSV. ``export_hint`` tells the user what to send."""
    if upload.size > settings.CMLIMS_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"file: larger than {settings.CMLIMS_MAX_UPLOAD_BYTES} bytes")
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in CSV_CONTENT_TYPES:
        raise UnsupportedMediaType(f"file: {content_type} is not CSV; {export_hint}",
                                   fields={"file": [f"{content_type} is not CSV"]})
