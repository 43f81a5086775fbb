"""Audit entries as a reviewer reads them: people by printed name, related records by their names (never
"culture 1", "content type 38"), decimals as entered (510, not 5.1E+2), nested payloads as short text.

``readable_entries(entries)`` resolves every reference with one query per related model (not per entry):
pages that show hundreds of entries stay at a fixed number of queries per kind of record."""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.dateparse import parse_datetime

from cmlims.models import AuditEntry

TEXT_LIMIT = 160


def printed_name(user) -> str:
    """The name a person signs with: full name, else the user name (as ``cmlims.esign`` prints it)."""
    return user.get_full_name().strip() or user.get_username()


def model_of(object_type: str):
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):
        return None


def record_kind(entry: AuditEntry) -> str:
    model = model_of(entry.object_type)
    return str(model._meta.verbose_name) if model is not None else entry.object_type


def record_name(entry: AuditEntry) -> str:
    """"culture CU-0001": the record's kind and its name as the entry recorded it."""
    return f"{record_kind(entry)} {entry.object_repr or entry.object_id}".strip()


@dataclass
class ReadableEntry:
    entry: AuditEntry
    who: str
    record: str
    kind: str = ""
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (label, old, new)


def _plain(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        text = "; ".join(f"{k.replace('_', ' ')}: {_plain(v)}" for k, v in value.items())
    elif isinstance(value, list):
        text = ", ".join(_plain(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _decimal(value) -> str:
    try:
        number = decimal.Decimal(str(value))
    except (decimal.InvalidOperation, ValueError):
        return _plain(value)
    return format(number, "f")


def _is_pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2


class _Resolver:
    """Collects the foreign keys of many entries, then fetches each related model's names once."""

    def __init__(self):
        self.wanted: dict[type[models.Model], set] = defaultdict(set)
        self.names: dict[tuple[type[models.Model], str], str] = {}

    def field(self, model, key: str):
        if model is None:
            return None
        for f in model._meta.concrete_fields:
            if f.attname == key or f.name == key:
                return f
        return None

    def collect(self, entry: AuditEntry) -> None:
        model = model_of(entry.object_type)
        for key, value in (entry.changes or {}).items():
            f = self.field(model, key)
            if f is not None and f.is_relation and f.related_model is not None:
                for v in (value if _is_pair(value) else [value]):
                    if v not in (None, ""):
                        self.wanted[f.related_model].add(str(v))

    def fetch(self) -> None:
        user_model = get_user_model()
        for model, ids in self.wanted.items():
            if model is ContentType:
                for ct_id in ids:
                    ct = ContentType.objects.get_for_id(int(ct_id)) if ct_id.isdigit() else None
                    if ct is not None:
                        self.names[(model, ct_id)] = str(ct.model_class()._meta.verbose_name
                                                         if ct.model_class() else ct.model)
                continue
            for obj in model._base_manager.filter(pk__in=ids):
                self.names[(model, str(obj.pk))] = printed_name(obj) if model is user_model else str(obj)

    def value(self, f, value) -> str:
        if value in (None, ""):
            return "—"
        if f is not None and f.is_relation and f.related_model is not None:
            return self.names.get((f.related_model, str(value)), f"#{value} (not found)")
        if isinstance(f, models.DecimalField):
            return _decimal(value)
        if isinstance(f, models.DateTimeField) and isinstance(value, str):
            parsed = parse_datetime(value)
            return parsed.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if parsed else value
        if f is not None and f.choices:
            return str(dict(f.flatchoices).get(value, value))
        return _plain(value)

    def rows(self, entry: AuditEntry) -> list[tuple[str, str, str]]:
        model = model_of(entry.object_type)
        out = []
        for key, value in sorted((entry.changes or {}).items()):
            f = self.field(model, key)
            label = str(f.verbose_name) if f is not None else key.replace("_", " ")
            if _is_pair(value):
                out.append((label, self.value(f, value[0]), self.value(f, value[1])))
            else:
                out.append((label, "", self.value(f, value)))
        return out


def readable_entries(entries: Iterable[AuditEntry]) -> list[ReadableEntry]:
    entries = list(entries)
    resolver = _Resolver()
    for entry in entries:
        resolver.collect(entry)
    user_model = get_user_model()
    users = {u.get_username(): printed_name(u)
             for u in user_model.objects.filter(username__in={e.username for e in entries if e.username})}
    resolver.fetch()
    return [ReadableEntry(entry=e, who=users.get(e.username, e.username or "system"), record=record_name(e),
                          kind=record_kind(e), changes=resolver.rows(e)) for e in entries]
