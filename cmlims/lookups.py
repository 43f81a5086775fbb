"""``<field>__in_ids=[...]`` (integer keys) and ``<field>__in_texts=[...]`` (text keys: a generic relation's
``object_id``): ``IN`` for a long list, sent to PostgreSQL as ONE array parameter.

The donor trace writes the busiest donor's 13,861 lot ids into its later queries (so that the planner knows
how many there are). As ``__in`` that is 13,861 placeholders a query: Django prepares each value and psycopg
splits the query text around each, 250 ms of Python for the trace's three such queries at the default scale
(B8b). ``= ANY(%s)`` with the list as one array costs the same plan (PostgreSQL turns an ``IN`` list into that
array itself) and no per-value Python. Other databases get the plain ``IN``. The text form is for the
investigations on a page of signed lots and their results (``object_id`` of 620 results for 20 lots: psycopg
split that query 620 times, 12 % of the page's sign-off check, B1t).
"""

from __future__ import annotations

from django.core.exceptions import EmptyResultSet
from django.db import models
from django.db.models import Lookup


class InIds(Lookup):
    lookup_name = "in_ids"
    prepare_rhs = False
    convert = int  # each value as the column holds it
    array_type = "bigint[]"

    def get_prep_lookup(self) -> list:
        return [self.convert(value) for value in self.rhs]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::{self.array_type})", [*lhs_params, self.rhs]
        if not self.rhs:
            raise EmptyResultSet
        return f"{lhs} IN ({', '.join(['%s'] * len(self.rhs))})", [*lhs_params, *self.rhs]


class InTexts(InIds):
    lookup_name = "in_texts"
    convert = str
    array_type = "text[]"


def lookups_register() -> None:
    """Called once from the app's ``ready``: integer keys and foreign keys take ``__in_ids``, text columns
    ``__in_texts``."""
    for field in (models.IntegerField, models.ForeignKey):
        field.register_lookup(InIds)
    models.CharField.register_lookup(InTexts)
