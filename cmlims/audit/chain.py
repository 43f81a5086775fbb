"""Appending to the chain: one advisory lock, one read of the head, one bulk insert (COPY when large)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import NamedTuple

from django.db import connection, models
from django.utils import timezone

from cmlims import context
from cmlims.audit.guard import UnauditedWrite, audited_write
from cmlims.audit.hashing import canonical_json, canonical_values, hmac_key, to_jsonable

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
    DOWNLOADED = "downloaded"  # a generated document's file served to someone (who, which, when)
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
            CREATED, CHANGED, VOIDED, SIGNED, SIGNATURE_FAILED, TRANSITIONED, PRINTED, GENERATED, DOWNLOADED,
            LOGGED_IN, LOGGED_OUT, LOGIN_FAILED, TOKEN_ISSUED, TOKEN_REVOKED, PERMISSIONS_CHANGED, REVIEWED,
            DELETED,
        )
    ]


# Set by ``late_entry``: entries appended meanwhile record a step that happened at this (earlier) time.
_occurred_at: ContextVar[datetime | None] = ContextVar("cmlims_late_entry", default=None)


@contextmanager
def late_entry(occurred_at: datetime) -> Iterator[None]:
    """Mark every entry appended inside as a late entry of a step that happened at ``occurred_at``."""
    token = _occurred_at.set(occurred_at)
    try:
        yield
    finally:
        _occurred_at.reset(token)


class ChainHead(NamedTuple):
    sequence: int
    hash: str


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
    # A late entry of a step that happened then (one import holds rows tested at many times); None: the
    # time set by ``late_entry`` around the append, if any.
    occurred_at: datetime | None = None


def object_type_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def _user_fields(user, actor_name: str = "") -> tuple[int | None, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        # No authenticated actor: a named pseudo-actor ("anonymous" for a failed login) or the system itself.
        return None, (actor_name or getattr(user, "username", "") or "system")
    return user.pk, user.get_username()


class _Group(NamedTuple):
    """One ``append_entries`` call held back by ``entries_deferred``: what it would have appended, and the
    context (late-entry time, request) it was called in."""

    actor: object
    actor_name: str
    pending: list[PendingEntry]
    around: datetime | None
    request_id: str


_deferred: ContextVar[list[_Group] | None] = ContextVar("cmlims_audit_deferred", default=None)

# Called with the entries of every append, in the transaction of the change, after they are inserted: what
# derives state from the records (the signature checks of cmlims.esign) learns here which records changed,
# whatever service changed them. A listener that raises rolls the change back with it.
_append_listeners: list = []


def register_append_listener(fn) -> None:
    """``fn(entries)`` after every append (``entries``: the AuditEntry instances just inserted)."""
    if fn not in _append_listeners:
        _append_listeners.append(fn)


@contextmanager
def entries_deferred() -> Iterator[None]:
    """Inside a transaction: ``append_entries`` calls (``audited_bulk_create``, …) keep their entries, and all of
    them are appended in call order at the end of the block, under one lock and one read of the head.

    The chain's lock is held from the first append to the commit, and every writer waits for it: a block that
    inserts rows and their entries several times (a label job's completion: labels, replaced labels, the job)
    holds it only for the one append at its end and the commit. The entries are those the calls would have
    written, in the same order (one time for all). They do not exist inside the block: ``audit_record``, which
    returns its entry, is refused there. An exception leaves nothing appended (the transaction rolls back)."""
    if not connection.in_atomic_block:
        raise UnauditedWrite("audit entries are written inside the transaction of the change")
    if _deferred.get() is not None:  # nested: the outer block appends
        yield
        return
    groups: list[_Group] = []
    token = _deferred.set(groups)
    try:
        yield
    finally:
        _deferred.reset(token)
    _append(groups)


def append_entries(*, actor, pending: Sequence[PendingEntry], actor_name: str = "") -> list:
    """Append entries to the chain: one lock, one read of the head, one bulk insert (inside
    ``entries_deferred``: at the end of the block, and none is returned here).

    ``actor_name`` names who acted when there is no authenticated ``actor`` (e.g. "anonymous").
    """
    if not pending:
        return []
    group = _Group(actor, actor_name, list(pending), _occurred_at.get(), context.current_request_id())
    deferred = _deferred.get()
    if deferred is not None:
        if not connection.in_atomic_block:
            raise UnauditedWrite("audit entries are written inside the transaction of the change")
        deferred.append(group)
        return []
    return _append([group])


def _append(groups: list[_Group]) -> list:
    from cmlims.models import AuditEntry

    if not any(group.pending for group in groups):
        return []
    _lock_chain()
    head = chain_head()
    now = timezone.now()
    key = hmac_key()
    entries = []
    prev = head.hash
    at_json = to_jsonable(now)
    attnames = [f.attname for f in AuditEntry._meta.concrete_fields]
    sequence = head.sequence
    for group in groups:
        user_id, username = _user_fields(group.actor, group.actor_name)
        for item in group.pending:
            sequence += 1
            occurred_at = item.occurred_at or group.around
            values = {
                "id": None,
                "sequence": sequence,
                "at": at_json,
                "user_id": user_id,
                "username": username[:150],
                "action": item.action,
                "object_type": item.object_type,
                "object_id": str(item.object_id)[:64],
                "object_repr": item.object_repr[:200],
                "changes": to_jsonable(item.changes),
                "reason": item.reason or "",
                "request_id": group.request_id,
                "late_entry": occurred_at is not None,
                "occurred_at": to_jsonable(occurred_at),
                "prev_hash": prev,
            }
            # The hot loop of a 10,000-row bulk change: canonical form from the plain values, the key fetched
            # once, and the instance built positionally (several times cheaper than keyword __init__).
            values["hash"] = prev = hmac.new(key, (prev + canonical_values(values)).encode(),
                                             hashlib.sha256).hexdigest()
            values["at"] = now
            values["occurred_at"] = occurred_at
            entries.append(AuditEntry(*[values[name] for name in attnames]))
    if connection.vendor == "postgresql" and len(entries) >= COPY_THRESHOLD:
        _copy_entries(entries)
    else:
        with audited_write():
            AuditEntry.objects.bulk_create(entries, batch_size=2000)
    for listener in _append_listeners:
        listener(entries)
    return entries


# Bulk changes append thousands of entries: PostgreSQL's COPY takes them several times faster than a
# multi-row INSERT (whose parameters psycopg adapts one by one in Python). From 20 entries on (a label job's
# completion appends about 100): measured 2026-12-03 on PostgreSQL 15, median of 15 appends rolled back, at
# load ~3.5: 20 entries 7.1 ms by INSERT / 5.7 ms by COPY, 50: 7.6 / 4.1 ms, 100: 18.9 / 5.5 ms (was 200).
COPY_THRESHOLD = 20
_COPY_COLUMNS = ("sequence", "at", "user_id", "username", "action", "object_type", "object_id", "object_repr",
                 "changes", "reason", "request_id", "late_entry", "occurred_at", "prev_hash", "hash")


def _copy_entries(entries: list) -> None:
    from cmlims.models import AuditEntry

    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _COPY_COLUMNS)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 (fixed names)
            for e in entries:
                copy.write_row((e.sequence, e.at, e.user_id, e.username, e.action, e.object_type, e.object_id,
                                e.object_repr, canonical_json(e.changes), e.reason, e.request_id, e.late_entry,
                                e.occurred_at, e.prev_hash, e.hash))
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
    if _deferred.get() is not None:
        raise RuntimeError("audit_record inside entries_deferred: its entry would not exist yet to return")
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
