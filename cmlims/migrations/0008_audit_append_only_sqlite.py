"""The append-only triggers of the audit tables on SQLite (0004 installs PostgreSQL's): see
``cmlims.audit.sqlite_guard``."""

from django.db import migrations

from cmlims.audit.sqlite_guard import sqlite_append_only_install, sqlite_append_only_remove


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            sqlite_append_only_install(cursor)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        with schema_editor.connection.cursor() as cursor:
            sqlite_append_only_remove(cursor)


class Migration(migrations.Migration):
    # After every change to the audit tables: on SQLite, a field change remakes the table and drops its triggers.
    dependencies = [("cmlims", "0007_audit_action_downloaded")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
