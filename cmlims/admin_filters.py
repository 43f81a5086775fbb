"""List filters for tables too large to scan for their choices (the audit trail)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import connection


def skip_scan_sql(table: str, column: str) -> str:
    """The distinct values of ``column`` (both names quoted already) as a skip scan over an index that leads
    with it: one probe per value. The first value is a scalar subquery: SQLite (the demo) refuses a
    parenthesised member of a UNION, PostgreSQL takes either."""
    return (f"WITH RECURSIVE skip(v) AS (SELECT (SELECT {column} FROM {table} ORDER BY {column} LIMIT 1) "  # noqa: S608
            f"UNION ALL SELECT (SELECT {column} FROM {table} WHERE {column} > skip.v ORDER BY {column} LIMIT 1) "
            f"FROM skip WHERE skip.v IS NOT NULL) SELECT v FROM skip WHERE v IS NOT NULL")


def distinct_values_indexed(model, column: str) -> list[str]:
    """The distinct values of ``column`` by ``skip_scan_sql`` (a few dozen object types: about a millisecond)
    where ``SELECT DISTINCT`` reads every row (1.5 s over 8.5 million audit entries). ``column`` must lead an
    index of ``model``'s table."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(skip_scan_sql(quote(model._meta.db_table), quote(column)))
        return [row[0] for row in cursor.fetchall()]


class IndexedValuesFilter(admin.AllValuesFieldListFilter):
    """Django's "all values" filter, its choices read by ``distinct_values_indexed``."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        self.lookup_choices = distinct_values_indexed(model, field.column)


class AccountFilter(admin.AllValuesFieldListFilter):
    """Entries by the user name of an account. The trail's own user names are not scanned for: they include
    every name typed at a failed login (a flood of invented ones would fill the sidebar); those are found by
    searching for the name."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        users = get_user_model()
        self.lookup_choices = list(users._default_manager.order_by(users.USERNAME_FIELD)
                                   .values_list(users.USERNAME_FIELD, flat=True))
