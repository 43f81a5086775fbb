"""The audit trail: one append-only, HMAC-chained table, written in the same transaction as the change.

Services never call ``Model.save()`` on an audited model: they call ``audited_create``,
``audited_update``, ``audited_save``, ``audited_void`` or the bulk variants here, each of
which writes the row(s) and one audit entry per row. Anything else raises ``UnauditedWrite``
(see ``AuditedModel``), so a forgotten path fails loudly instead of leaving a gap.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from cmlims import context
from cmlims.exceptions import InvalidInput, from_django_validation_error

M = TypeVar("M", bound=models.Model)

# Advisory lock id for chain appends ("cmlims-audit" folded into a bigint).
AUDIT_LOCK_ID = 0x636D6C696D73
GENESIS_HASH = "0" * 64


class Action:
    CREATED = "created"
    CHANGED = "changed"
    VOIDED = "voided"
    SIGNED = "signed"
    SIGNATURE_FAILED = "signature_failed"
    TRANSITIONED = "transitioned"
    PRINTED = "printed"
    GENERATED = "generated"
    LOGGED_IN = "logged_in"
    LOGGED_OUT = "logged_out"
    LOGIN_FAILED = "login_failed"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    PERMISSIONS_CHANGED = "permissions_changed"
    REVIEWED = "reviewed"
    DELETED = "deleted"  # only Django's own auth records (groups); GMP records are voided

    CHOICES = [
        (v, v.replace("_", " "))
        for v in (
            CREATED, CHANGED, VOIDED, SIGNED, SIGNATURE_FAILED, TRANSITIONED, PRINTED, GENERATED,
            LOGGED_IN, LOGGED_OUT, LOGIN_FAILED, TOKEN_ISSUED, TOKEN_REVOKED, PERMISSIONS_CHANGED, REVIEWED,
            DELETED,
        )
    ]


class UnauditedWrite(RuntimeError):
    """A write to an audited model that bypassed the audit services."""


class ChainHead(NamedTuple):
    sequence: int
    hash: str


_writing: ContextVar[bool] = ContextVar("cmlims_audited_write", default=False)


@contextmanager
def _audited_write() -> Iterator[None]:
    token = _writing.set(True)
    try:
        yield
    finally:
        _writing.reset(token)


def write_allowed() -> bool:
    return _writing.get()


# --- canonical form and hashing -----------------------------------------------------------------------


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


def canonical_json(data: Any) -> str:
    """Sorted keys, no whitespace: the form signatures and the chain hash."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _hmac_key() -> bytes:
    key = getattr(settings, "AUDIT_HMAC_KEY", "")
    if not key:
        raise ImproperlyConfigured("AUDIT_HMAC_KEY (env CMLIMS_AUDIT_KEY) is not set")
    return key.encode()


def entry_hash(prev_hash: str, canonical: str) -> str:
    return hmac.new(_hmac_key(), (prev_hash + canonical).encode(), hashlib.sha256).hexdigest()


_CANONICAL_KEYS = ("sequence", "at", "user_id", "username", "action", "object_type", "object_id", "object_repr",
                   "changes", "reason", "request_id")


def _canonical(values: dict) -> str:
    """The canonical form of an entry given its field values (``at`` already in its JSON form)."""
    return canonical_json({key: values[key] for key in _CANONICAL_KEYS})


def entry_canonical(entry) -> str:
    """What the chain covers for one entry (everything but the hashes themselves)."""
    values = {key: getattr(entry, key) for key in _CANONICAL_KEYS}
    values["at"] = to_jsonable(entry.at)
    return _canonical(values)


# --- appending ----------------------------------------------------------------------------------------


def _lock_chain() -> None:
    if not connection.in_atomic_block:
        raise UnauditedWrite("audit entries are written inside the transaction of the change")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_ID])
    # SQLite: transactions are IMMEDIATE, so the writer already holds the database's write lock.


def chain_head() -> ChainHead:
    """The newest (sequence, hash); stored in signatures and documents as an anchor."""
    from cmlims.models import AuditEntry

    last = AuditEntry.objects.order_by("-sequence").values_list("sequence", "hash").first()
    return ChainHead(*last) if last else ChainHead(0, GENESIS_HASH)


class PendingEntry(NamedTuple):
    action: str
    object_type: str
    object_id: str
    object_repr: str
    changes: dict
    reason: str


def object_type_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def _user_fields(user, actor_name: str = "") -> tuple[int | None, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        # No authenticated actor: a named pseudo-actor ("anonymous" for a failed login) or the system itself.
        return None, (actor_name or getattr(user, "username", "") or "system")
    return user.pk, user.get_username()


def append_entries(*, actor, pending: Sequence[PendingEntry], actor_name: str = "") -> list:
    """Append entries to the chain: one lock, one read of the head, one bulk insert.

    ``actor_name`` names who acted when there is no authenticated ``actor`` (e.g. "anonymous").
    """
    from cmlims.models import AuditEntry

    if not pending:
        return []
    _lock_chain()
    head = chain_head()
    user_id, username = _user_fields(actor, actor_name)
    now = timezone.now()
    request_id = context.current_request_id()
    key = _hmac_key()
    entries = []
    prev = head.hash
    at_json = to_jsonable(now)
    attnames = [f.attname for f in AuditEntry._meta.concrete_fields]
    for offset, item in enumerate(pending, start=1):
        values = {
            "id": None,
            "sequence": head.sequence + offset,
            "at": at_json,
            "user_id": user_id,
            "username": username[:150],
            "action": item.action,
            "object_type": item.object_type,
            "object_id": str(item.object_id)[:64],
            "object_repr": item.object_repr[:200],
            "changes": to_jsonable(item.changes),
            "reason": item.reason or "",
            "request_id": request_id,
            "prev_hash": prev,
        }
        # The hot loop of a 10,000-row bulk change: canonical form from the plain values, the key fetched
        # once, and the instance built positionally (several times cheaper than keyword __init__).
        values["hash"] = prev = hmac.new(key, (prev + _canonical(values)).encode(), hashlib.sha256).hexdigest()
        values["at"] = now
        entries.append(AuditEntry(*[values[name] for name in attnames]))
    if connection.vendor == "postgresql" and len(entries) >= COPY_THRESHOLD:
        _copy_entries(entries)
    else:
        with _audited_write():
            AuditEntry.objects.bulk_create(entries, batch_size=2000)
    return entries


# Bulk changes append thousands of entries: PostgreSQL's COPY takes them several times faster than a
# multi-row INSERT (whose parameters psycopg adapts one by one in Python).
COPY_THRESHOLD = 200
_COPY_COLUMNS = ("sequence", "at", "user_id", "username", "action", "object_type", "object_id", "object_repr",
                 "changes", "reason", "request_id", "prev_hash", "hash")


def _copy_entries(entries: list) -> None:
    from cmlims.models import AuditEntry

    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _COPY_COLUMNS)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 (fixed names)
            for e in entries:
                copy.write_row((e.sequence, e.at, e.user_id, e.username, e.action, e.object_type, e.object_id,
                                e.object_repr, canonical_json(e.changes), e.reason, e.request_id, e.prev_hash, e.hash))
        # The rows exist now; give the instances their ids as bulk_create would have.
        cursor.execute(f"SELECT sequence, id FROM {table} WHERE sequence BETWEEN %s AND %s",  # noqa: S608
                       [entries[0].sequence, entries[-1].sequence])
        ids = dict(cursor.fetchall())
    for entry in entries:
        entry.pk = ids[entry.sequence]
        entry._state.adding = False
        entry._state.db = connection.alias


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    changes: dict | None = None,
    reason: str = "",
    actor_name: str = "",
):
    """Append one entry. ``obj`` or (``object_type``, ``object_id``) names what it is about."""
    if obj is not None:
        object_type = object_type or object_type_of(obj)
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    (entry,) = append_entries(
        actor=actor,
        actor_name=actor_name,
        pending=[PendingEntry(action, object_type, str(object_id), object_repr, changes or {}, reason)],
    )
    return entry


# --- audited writes -----------------------------------------------------------------------------------


def audited_fields(obj_or_model) -> list[models.Field]:
    excluded = set(getattr(obj_or_model, "audit_exclude", ()))
    return [f for f in obj_or_model._meta.concrete_fields if f.name not in excluded]


def snapshot(obj: models.Model, only: Iterable[str] | None = None) -> dict[str, Any]:
    """{attname: stored form} of the audited fields (``only``: a subset of attnames)."""
    wanted = set(only) if only is not None else None
    return {
        f.attname: to_jsonable(getattr(obj, f.attname))
        for f in audited_fields(obj)
        if wanted is None or f.attname in wanted
    }


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list]:
    """{field: [old, new]} for every field whose stored form changed."""
    return {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}


def _clean(obj: models.Model, exclude: Iterable[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=list(exclude) if exclude else None)
    except ValidationError as exc:
        raise from_django_validation_error(exc) from exc


def _clean_fields_only(obj: models.Model, exclude: Iterable[str]) -> None:
    """Field and model validation without the per-row uniqueness queries (bulk paths: the database's
    constraints catch duplicates, reported by ``_bulk_integrity``)."""
    try:
        obj.clean_fields(exclude=list(exclude))
        obj.clean()
    except ValidationError as exc:
        raise from_django_validation_error(exc) from exc


_PG_KEY = re.compile(r"Key \(([^)]*)\)=")
_PG_CONSTRAINT = re.compile(r'constraint "([^"]+)"')
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def integrity_error(model, exc: IntegrityError) -> InvalidInput:
    """The database refused a row (typically a duplicate that a concurrent transaction committed after our
    uniqueness check): answer the same 400 ``invalid`` as full_clean would, naming the field(s)."""
    text = str(exc)
    columns: list[str] = []
    if match := _PG_KEY.search(text):  # PostgreSQL: Key (code)=(D-1) already exists.
        columns = [c.strip().strip('"') for c in match.group(1).split(",")]
    elif match := _SQLITE_UNIQUE.search(text):  # SQLite: UNIQUE constraint failed: table.a, table.b
        columns = [c.strip().rsplit(".", 1)[-1] for c in match.group(1).splitlines()[0].split(",")]
    by_column = {f.column: f.name for f in model._meta.concrete_fields}
    names = [by_column[c] for c in columns if c in by_column]
    if not names and (match := _PG_CONSTRAINT.search(text)):
        for constraint in model._meta.constraints:
            if constraint.name == match.group(1) and getattr(constraint, "fields", None):
                names = list(constraint.fields)
    label = model._meta.verbose_name
    if "unique" in text.lower() or "duplicate" in text.lower():
        if names:
            problem = f"a {label} with this {' and '.join(names)} already exists"
            return InvalidInput(
                f"{', '.join(names)}: {problem}", fields={name: [problem] for name in names}
            )
        problem = f"a {label} with these values already exists"
    else:
        problem = f"the database refused this {label}: {text.splitlines()[0] if text else 'integrity error'}"
    return InvalidInput(problem, fields={name: [problem] for name in names} or {"non_field_errors": [problem]})


@contextmanager
def _bulk_integrity(model) -> Iterator[None]:
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise integrity_error(model, exc) from exc


def _require_reason(obj: models.Model, reason: str) -> None:
    needs = getattr(obj, "change_requires_reason", None)
    if needs and needs() and not (reason or "").strip():
        raise InvalidInput(
            "reason: a reason is required to change a record that has been released or signed",
            fields={"reason": ["required to change a record that has been released or signed"]},
        )


def _attnames(model, names: Iterable[str]) -> list[str]:
    return [model._meta.get_field(name).attname for name in names]


def _chunks(items: Sequence, size: int = 5000) -> Iterator[Sequence]:
    # SQLite caps bound parameters per statement; pk__in lists are split.
    for start in range(0, len(items), size):
        yield items[start:start + size]


@transaction.atomic
def audited_create(model: type[M], *, actor, reason: str = "", clean: bool = True, **values: Any) -> M:
    obj = model(**values)
    return audited_save(obj, actor=actor, reason=reason, clean=clean)


def _persist(obj: M, *, actor, reason: str, action: str | None, clean: bool, original: dict | None) -> M:
    """Write ``obj`` and its entry; ``original`` is the stored snapshot (None when inserting)."""
    creating = original is None
    if clean:
        _clean(obj)
    try:
        with _audited_write():
            obj.save()
    except IntegrityError as exc:
        # No savepoint of our own (it would cost two queries on every write): the enclosing atomic of
        # audited_save rolls back, which leaves an outer transaction usable.
        raise integrity_error(type(obj), exc) from exc
    new = snapshot(obj)
    changes = {k: [None, v] for k, v in new.items()} if creating else diff(original, new)
    if not creating and not changes:
        return obj
    audit_record(
        actor=actor,
        action=action or (Action.CREATED if creating else Action.CHANGED),
        obj=obj,
        changes=changes,
        reason=reason,
    )
    return obj


@transaction.atomic
def audited_save(
    obj: M, *, actor, reason: str = "", action: str | None = None, clean: bool = True, original: dict | None = None
) -> M:
    """Insert or update ``obj`` and write one entry with every changed field (old and new).

    For an update the stored row is re-read under a row lock: it gives the old side of the diff
    (unless ``original``, a snapshot taken before the caller changed the instance, is given) and
    decides whether a reason is required (the state *before* the change counts: releasing a record
    needs no reason, changing it once released does).
    """
    if obj._state.adding:
        return _persist(obj, actor=actor, reason=reason, action=action, clean=clean, original=None)
    stored = type(obj)._base_manager.select_for_update().get(pk=obj.pk)
    _require_reason(stored, reason)
    return _persist(
        obj, actor=actor, reason=reason, action=action, clean=clean,
        original=original if original is not None else snapshot(stored),
    )


@transaction.atomic
def audited_update(
    obj: M, *, actor, reason: str = "", action: str | None = None, clean: bool = True, **values: Any
) -> M:
    """Set ``values`` on ``obj`` (already fetched, ideally locked by the caller) and save with audit."""
    original = snapshot(obj)
    _require_reason(obj, reason)
    for name, value in values.items():
        setattr(obj, name, value)
    return _persist(obj, actor=actor, reason=reason, action=action, clean=clean, original=original)


@transaction.atomic
def audited_void(obj: M, *, actor, reason: str) -> M:
    """GMP records are never deleted: they are voided with a reason."""
    if not (reason or "").strip():
        raise InvalidInput("reason: a reason is required to void a record", fields={"reason": ["required"]})
    if not hasattr(obj, "voided_at"):
        raise InvalidInput(
            f"{type(obj).__name__} records cannot be voided", fields={"non_field_errors": ["not voidable"]}
        )
    if obj.voided_at:
        raise InvalidInput(f"{obj} is already voided", fields={"non_field_errors": ["already voided"]})
    return audited_update(
        obj, actor=actor, reason=reason, action=Action.VOIDED, clean=False,
        voided_at=timezone.now(), voided_by=actor, void_reason=reason,
    )


@transaction.atomic
def audited_bulk_create(model: type[M], objs: Sequence[M], *, actor, reason: str = "", clean: bool = True) -> list[M]:
    """Insert many rows and one 'created' entry per row (the pk must be known: PostgreSQL and SQLite return it)."""
    objs = list(objs)
    if clean:
        relations = [f.name for f in model._meta.fields if f.many_to_one or f.one_to_one]
        for obj in objs:
            _clean_fields_only(obj, exclude=relations)
    with _audited_write(), _bulk_integrity(model):
        created = model._default_manager.bulk_create(objs, batch_size=2000)
    append_entries(
        actor=actor,
        pending=[
            PendingEntry(Action.CREATED, object_type_of(model), str(o.pk), str(o),
                         {k: [None, v] for k, v in snapshot(o).items()}, reason)
            for o in created
        ],
    )
    return created


def _locked_rows(model, pks: Sequence, *, lock: bool = True) -> dict:
    rows: dict = {}
    for chunk in _chunks(list(pks)):
        query = model._base_manager.filter(pk__in=chunk)
        rows.update((o.pk, o) for o in (query.select_for_update() if lock else query))
    return rows


def _share_related_cache(source: models.Model, target: models.Model) -> None:
    """Let ``target`` (a re-read row) use the related objects ``source`` already holds for the same ids,
    so ``change_requires_reason()`` and ``__str__`` of 10,000 rows do not run 10,000 queries."""
    cache = getattr(source._state, "fields_cache", None)
    if not cache:
        return
    for name, related in cache.items():
        try:
            field = source._meta.get_field(name)
        except FieldDoesNotExist:  # a reverse accessor's cache: not ours to share
            continue
        attname = getattr(field, "attname", None)
        if attname and getattr(source, attname, None) == getattr(target, attname, None):
            target._state.fields_cache.setdefault(name, related)


@transaction.atomic
def audited_bulk_update(
    objs: Sequence[M], fields: Sequence[str], *, actor, reason: str = "", action: str | None = None
) -> int:
    """Update ``fields`` of many rows; the stored values are read in one locked query for the old side.

    Only ``fields`` are written, so only they are compared. Returns the number of rows that changed.
    """
    objs = list(objs)
    if not objs:
        return 0
    model = type(objs[0])
    attnames = _attnames(model, fields)
    stored = _locked_rows(model, [o.pk for o in objs])
    missing = [o.pk for o in objs if o.pk not in stored]
    if missing:
        raise InvalidInput(
            f"{model._meta.verbose_name}: no stored row with id {missing[0]}",
            fields={"non_field_errors": [f"unknown ids: {missing[:10]}"]},
        )
    object_type = object_type_of(model)
    pending = []
    changed = []
    for obj in objs:
        before = stored[obj.pk]
        changes = diff(snapshot(before, attnames), snapshot(obj, attnames))
        if changes:
            _share_related_cache(obj, before)
            _require_reason(before, reason)
            pending.append(PendingEntry(action or Action.CHANGED, object_type, str(obj.pk), str(obj), changes, reason))
            changed.append(obj)
    if changed:
        with _audited_write(), _bulk_integrity(model):
            model._default_manager.bulk_update(changed, fields, batch_size=1000)
    append_entries(actor=actor, pending=pending)
    return len(pending)


@transaction.atomic
def audited_queryset_update(
    queryset: models.QuerySet, *, actor, reason: str = "", action: str | None = None, **values: Any
) -> int:
    """``queryset.update(**values)`` with one entry per row that actually changed.

    Values may be expressions (``F("count") + 1``): the rows are locked and read before, the update runs
    in the database, and the rows are read again for the new side of each entry. Each entry's
    object_repr is ``str(row)``: ``select_related`` on ``queryset`` whatever ``__str__`` needs.
    """
    model = queryset.model
    attnames = _attnames(model, values)
    before = {o.pk: o for o in queryset.select_for_update(of=("self",))}
    pks = list(before)
    for row in before.values():
        _require_reason(row, reason)
    with _audited_write(), _bulk_integrity(model):
        for chunk in _chunks(pks):
            model._base_manager.filter(pk__in=chunk).update(**values)
    after = _locked_rows(model, pks, lock=False)  # already locked above
    for pk, row in after.items():
        _share_related_cache(before[pk], row)
    object_type = object_type_of(model)
    pending = []
    for pk in pks:
        changes = diff(snapshot(before[pk], attnames), snapshot(after[pk], attnames))
        if changes:
            pending.append(
                PendingEntry(action or Action.CHANGED, object_type, str(pk), str(after[pk]), changes, reason)
            )
    append_entries(actor=actor, pending=pending)
    return len(pending)


# --- guarded base model -------------------------------------------------------------------------------


class AuditedQuerySet(models.QuerySet):
    """Unsafe paths raise: writes go through the audit services, and nothing is deleted."""

    def update(self, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{self.model.__name__}: use cmlims.audit.audited_queryset_update")
        return super().update(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{self.model.__name__}: use cmlims.audit.audited_bulk_create")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{self.model.__name__}: use cmlims.audit.audited_bulk_update")
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update_or_create(self, *args, **kwargs):
        raise UnauditedWrite(f"{self.model.__name__}: use the audit services")

    def delete(self):
        raise UnauditedWrite(f"{self.model.__name__}: GMP records are voided, never deleted")

    delete.queryset_only = True


class AuditedModel(models.Model):
    """Base for every GMP record: saving or deleting outside the audit services raises."""

    objects = AuditedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{type(self).__name__}.save(): use cmlims.audit.audited_save (or a service)")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise UnauditedWrite(f"{type(self).__name__}: GMP records are voided, never deleted")

    def change_requires_reason(self) -> bool:
        """Override: True once the record is released or signed (Annex 11 §9)."""
        return False


class VoidableModel(AuditedModel):
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="+"
    )
    void_reason = models.TextField(blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None


def audited_models() -> list[type[models.Model]]:
    """Every concrete audited model in the app registry (the enforcement test walks these)."""
    from django.apps import apps

    return [m for m in apps.get_models() if issubclass(m, AuditedModel)]


def _refuse_cascade_delete(sender, instance, **kwargs) -> None:
    raise UnauditedWrite(f"{sender.__name__}: GMP records are voided, never deleted (not even by a cascade)")


def _guard_audited_model(sender, **kwargs) -> None:
    """For every concrete audited model: its base manager is the guarded one too (``_base_manager``
    would otherwise be a plain Manager whose ``update()`` skips the trail), and a cascade delete
    from another model's row raises through ``pre_delete``."""
    if not issubclass(sender, AuditedModel) or sender._meta.abstract:
        return
    if sender._meta.base_manager_name is None:
        sender._meta.base_manager_name = sender._meta.default_manager.name
    models.signals.pre_delete.connect(
        _refuse_cascade_delete, sender=sender, weak=False, dispatch_uid=f"cmlims_no_delete_{sender._meta.label}"
    )


models.signals.class_prepared.connect(_guard_audited_model, dispatch_uid="cmlims_guard_audited_model")
