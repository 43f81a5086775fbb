"""The write API: every change to an audited model, with one entry per changed row, in one transaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from cmlims.audit.chain import Action, PendingEntry, append_entries, audit_record, object_type_of
from cmlims.audit.guard import audited_write
from cmlims.audit.hashing import to_jsonable
from cmlims.exceptions import InvalidInput, from_django_validation_error
from cmlims.locks import queryset_lock, record_lock, records_lock

M = TypeVar("M", bound=models.Model)


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
        with audited_write():
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
    stored = record_lock(type(obj), obj.pk)
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
def audited_bulk_create(
    model: type[M], objs: Sequence[M], *, actor, reason: str = "", clean: bool = True,
    entry_for: Callable[[M], tuple[str, datetime | None]] | None = None,
) -> list[M]:
    """Insert many rows and one 'created' entry per row (the pk must be known: PostgreSQL and SQLite return it).

    ``entry_for(row)`` gives a row's own (reason, late-entry time) when rows differ (an import of results
    tested at many times): still one insert and one append under one lock, whatever the mix."""
    objs = list(objs)
    if clean:
        relations = [f.name for f in model._meta.fields if f.many_to_one or f.one_to_one]
        for obj in objs:
            _clean_fields_only(obj, exclude=relations)
    with audited_write(), _bulk_integrity(model):
        created = model._default_manager.bulk_create(objs, batch_size=2000)
    object_type = object_type_of(model)
    pending = []
    for o in created:
        own_reason, occurred_at = entry_for(o) if entry_for is not None else (reason, None)
        pending.append(PendingEntry(Action.CREATED, object_type, str(o.pk), str(o),
                                    {k: [None, v] for k, v in snapshot(o).items()}, own_reason or reason,
                                    occurred_at))
    append_entries(actor=actor, pending=pending)
    return created


def _locked_rows(model, pks: Sequence, *, lock: bool = True) -> dict:
    rows: dict = {}
    for chunk in _chunks(list(pks)):
        found = records_lock(model, chunk) if lock else model._base_manager.filter(pk__in=chunk)
        rows.update((o.pk, o) for o in found)
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
        with audited_write(), _bulk_integrity(model):
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
    before = {o.pk: o for o in queryset_lock(queryset)}
    pks = list(before)
    for row in before.values():
        _require_reason(row, reason)
    with audited_write(), _bulk_integrity(model):
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
