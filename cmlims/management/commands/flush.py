"""Django's ``flush``, with the SQLite append-only triggers of the audit tables suspended around it: the test
runner empties every table between transactional tests (PostgreSQL's flush truncates, which its trigger
lets through; SQLite's deletes, which the triggers refuse)."""

from django.core.management.commands.flush import Command as DjangoFlush
from django.db import connections

from cmlims.audit.sqlite_guard import sqlite_append_only_suspended


class Command(DjangoFlush):
    def handle(self, **options):
        with sqlite_append_only_suspended(connections[options["database"]]):
            return super().handle(**options)
