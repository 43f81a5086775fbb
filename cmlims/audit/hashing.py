"""The canonical form of values and entries, and the chain's HMAC."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import hmac
import json
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    """The stored form of a field value: stable, JSON-native, comparable."""
    kind = type(value)
    if kind in _PLAIN_TYPES:  # the common case first: bulk changes call this for every value of every row
        return value
    if kind is dict:
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if kind is list:
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool):  # subclasses (choices enums) become their plain value
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return str(value.normalize()) if value == value.to_integral() else str(value)
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "name") and hasattr(value, "storage"):  # FieldFile
        return value.name or None
    if isinstance(value, models.Model):
        return value.pk
    return str(value)


# One encoder for every call: json.dumps with these options builds a new one each time, a measurable share of
# hashing an entry (verify_audit and bulk writes hash millions). Same output as json.dumps with them.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace: the form signatures and the chain hash."""
    return _CANONICAL_ENCODER.encode(data)


def hmac_key() -> bytes:
    key = getattr(settings, "AUDIT_HMAC_KEY", "")
    if not key:
        raise ImproperlyConfigured("AUDIT_HMAC_KEY (env CMLIMS_AUDIT_KEY) is not set")
    return key.encode()


def entry_hash(prev_hash: str, canonical: str) -> str:
    return hmac.new(hmac_key(), (prev_hash + canonical).encode(), hashlib.sha256).hexdigest()


_CANONICAL_KEYS = ("sequence", "at", "user_id", "username", "action", "object_type", "object_id", "object_repr",
                   "changes", "reason", "request_id")


# Only a late entry carries these keys, so every entry written before they existed keeps its hash.
_LATE_KEYS = ("late_entry", "occurred_at")


def canonical_values(values: dict) -> str:
    """The canonical form of an entry given its field values (``at`` and ``occurred_at`` in JSON form)."""
    keys = _CANONICAL_KEYS + _LATE_KEYS if values.get("late_entry") else _CANONICAL_KEYS
    return canonical_json({key: values[key] for key in keys})


def entry_canonical(entry) -> str:
    """What the chain covers for one entry (everything but the hashes themselves)."""
    values = {key: getattr(entry, key) for key in _CANONICAL_KEYS + _LATE_KEYS}
    values["at"] = to_jsonable(entry.at)
    values["occurred_at"] = to_jsonable(entry.occurred_at)
    return canonical_values(values)
