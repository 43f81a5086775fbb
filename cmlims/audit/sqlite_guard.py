"""The audit trail's append-only guarantee in the database on SQLite, as the PostgreSQL trigger gives it
(migration ``cmlims.0008_audit_append_only_sqlite``): UPDATE and DELETE on the audit tables abort.

A later migration that changes an audit table's fields remakes the table on SQLite, which drops the
triggers: such a migration must install them again (``sqlite_append_only_install``).
Whoever holds the database file can drop these triggers (as a PostgreSQL superuser can disable that one),
which is why the HMAC chain and its anchors, not the triggers, prove integrity. Two legitimate paths delete
rows: the test runner's ``flush`` (``cmlims``'s own ``flush`` command suspends the triggers around Django's)
and the tests that tamper as such an attacker would (``tests/support/tamper.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

TABLES = ("cmlims_auditentry", "cmlims_auditcheckpoint")
OPERATIONS = ("UPDATE", "DELETE")


def _name(table: str, operation: str) -> str:
    return f"{table}_append_only_{operation.lower()}"


def sqlite_append_only_install(cursor) -> None:
    for table in TABLES:
        for operation in OPERATIONS:
            cursor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {_name(table, operation)} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'cmlims: {operation} on {table} is forbidden: the audit trail is "
                f"append-only'); END"
            )


def sqlite_append_only_remove(cursor) -> None:
    for table in TABLES:
        for operation in OPERATIONS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {_name(table, operation)}")


@contextmanager
def sqlite_append_only_suspended(connection) -> Iterator[None]:
    """Drop the triggers for the block and put them back after it (no-op on other databases)."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        sqlite_append_only_remove(cursor)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            sqlite_append_only_install(cursor)
