"""Defence in depth on PostgreSQL: the database itself refuses UPDATE and DELETE on the audit tables.

The application never updates or deletes entries (AuditEntryQuerySet raises); this trigger stops
anyone else using the application's database role too. A database superuser can still disable it
(ALTER TABLE ... DISABLE TRIGGER), which is why the HMAC chain and its anchors, not the trigger, are
what proves integrity; verify_audit catches what such an attacker does. TRUNCATE is not blocked: the
test runner's flush needs it, and a truncated trail is caught by every signature/checkpoint anchor.
On SQLite, 0006 installs the same guarantee (cmlims.audit.sqlite_guard).
"""

from django.db import migrations

TABLES = ("cmlims_auditentry", "cmlims_auditcheckpoint")

# "%%": schema_editor.execute formats the SQL with parameters, so a literal % is doubled.
CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION cmlims_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'cmlims: %% on %% is forbidden: the audit trail is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE_FUNCTION)
    for table in TABLES:
        schema_editor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION cmlims_audit_append_only()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS cmlims_audit_append_only()")


class Migration(migrations.Migration):
    dependencies = [("cmlims", "0003_audit_checkpoint")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
