"""Raw SQL the way an attacker with database (superuser) access runs it, for tests of audit verification."""

from django.db import connection

from cmlims.audit.sqlite_guard import sqlite_append_only_suspended


def tamper(sql: str, params=()) -> None:
    """Run ``sql`` past the append-only trigger (PostgreSQL: replica role, superuser only; SQLite: whoever holds
    the file drops the triggers)."""
    with sqlite_append_only_suspended(connection), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Superuser only: ordinary triggers (our append-only one included) stop firing.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
