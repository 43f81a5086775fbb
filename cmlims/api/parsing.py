"""The one way an API view reads its input: a DRF ``Serializer`` declared per operation (types and field rules
only; the services decide), validated here. A refusal is the project's 400 ``invalid`` with ``fields`` (the
exception handler shapes it), and drf-spectacular describes the same serializer as the body or the query."""

from __future__ import annotations

from functools import cache
from typing import Any

from rest_framework import serializers
from rest_framework.request import Request

from cmlims.api.throttling import body_throttle


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
