"""make backup / make restore on the configured database (PostgreSQL: pg_dump/pg_restore into a scratch
database; SQLite: the online backup API into a scratch file), with media files and a SHA-256 manifest."""

import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from cmlims.anchors import audit_checkpoint_write
from cmlims.audit import audited_create, audited_update, chain_head
from cmlims.models import AuditEntry
from tests.auditfixture.models import FixtureRecord
from tests.support.tamper import tamper

# The dump/copy is made by another connection or process: the data must be committed.
with_committed_data = pytest.mark.django_db(transaction=True)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    (settings.MEDIA_ROOT / "uploads").mkdir(parents=True)
    (settings.MEDIA_ROOT / "documents" / "2026").mkdir(parents=True)
    (settings.MEDIA_ROOT / "uploads" / "logger.csv").write_text("time,temp\n2026-01-01T00:00:00Z,4.1\n")
    (settings.MEDIA_ROOT / "documents" / "2026" / "coa-CM26-0001.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)))
    return settings.MEDIA_ROOT


@pytest.fixture
def records(make_user):
    actor = make_user("keeper")
    with transaction.atomic():
        for i in range(5):
            record = audited_create(FixtureRecord, actor=actor, name=f"B{i}")
            audited_update(record, actor=actor, quantity=i)
        audit_checkpoint_write()
    return chain_head()


@pytest.fixture
def scratch_url(tmp_path):
    """A database URL of the configured kind that nothing else uses (dropped afterwards on PostgreSQL)."""
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    config = connection.settings_dict
    name = f"cmlims_restore_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    auth = config["USER"] + (f":{config['PASSWORD']}" if config.get("PASSWORD") else "")
    yield f"postgres://{auth}@{config['HOST'] or '127.0.0.1'}:{config['PORT'] or 5432}/{name}"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@with_committed_data
@pytest.mark.req("README-BACKUP")
def test_backup_then_restore_round_trip_passes_verify_audit(records, media, tmp_path, scratch_url, capsys):
    folder = tmp_path / "backup"
    call_command("backup", destination=folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["engine"] == {"postgresql": "postgresql", "sqlite": "sqlite"}[connection.vendor]
    assert manifest["chain_head"] == {"sequence": records.sequence, "hash": records.hash}
    assert {"media/uploads/logger.csv", "media/documents/2026/coa-CM26-0001.pdf", manifest["database"]} == set(
        manifest["files"])

    restored_media = tmp_path / "restored-media"
    capsys.readouterr()
    call_command("restore", source=folder, database_url=scratch_url, media_root=restored_media, noinput=True)
    out = capsys.readouterr().out
    assert f"Audit trail intact: {records.sequence} entries, head #{records.sequence}" in out
    assert (restored_media / "uploads" / "logger.csv").read_text() == (media / "uploads" / "logger.csv").read_text()
    assert (restored_media / "documents" / "2026" / "coa-CM26-0001.pdf").read_bytes() == (
        media / "documents" / "2026" / "coa-CM26-0001.pdf").read_bytes()


@with_committed_data
@pytest.mark.req("README-BACKUP")
def test_restore_refuses_a_backup_that_does_not_match_its_manifest(records, media, tmp_path, scratch_url):
    folder = tmp_path / "backup"
    call_command("backup", destination=folder)
    (folder / "media" / "uploads" / "logger.csv").write_text("time,temp\n2026-01-01T00:00:00Z,25.0\n")
    (folder / "media" / "uploads" / "extra.txt").write_text("slipped in")
    restored_media = tmp_path / "restored-media"
    with pytest.raises(CommandError) as exc:
        call_command("restore", source=folder, database_url=scratch_url, media_root=restored_media, noinput=True)
    message = str(exc.value)
    assert "refusing to restore" in message
    assert "SHA-256 mismatch: media/uploads/logger.csv" in message
    assert "not in the manifest: media/uploads/extra.txt" in message
    assert not restored_media.exists()  # nothing was touched


def test_restore_refuses_a_folder_without_a_manifest(tmp_path):
    """Checked before any database is touched (this test has no database access at all)."""
    with pytest.raises(CommandError, match="not a cmlims backup"):
        call_command("restore", source=tmp_path, noinput=True)


def test_backup_refuses_a_folder_that_is_not_empty(tmp_path):
    """Never mixes a new backup into an old one (checked before the database is read)."""
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "something").write_text("x")
    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", destination=tmp_path / "used")


@with_committed_data
def test_a_restored_database_with_a_tampered_trail_fails_verification(records, media, tmp_path, scratch_url):
    """The restore runs verify_audit on what it restored: tampering made before the backup shows up."""
    target = AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True)[3]
    with transaction.atomic():
        tamper("UPDATE cmlims_auditentry SET reason = 'rewritten' WHERE sequence = %s", [target])
    folder = tmp_path / "backup"
    call_command("backup", destination=folder)
    with pytest.raises(CommandError) as exc:
        call_command("restore", source=folder, database_url=scratch_url, media_root=tmp_path / "m", noinput=True)
    assert "does NOT verify" in str(exc.value) and f"BROKEN at entry #{target} (hmac)" in str(exc.value)
