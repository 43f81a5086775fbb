"""verify_audit catches tampering done the way an attacker with database access would do it: raw SQL.

On PostgreSQL the audit tables refuse UPDATE/DELETE through a trigger; the attacker here is a database
superuser who switches it off first (session_replication_role = replica, or ALTER TABLE … DISABLE
TRIGGER), as a real one could.
"""

import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from cmlims.anchors import anchor_sources, audit_checkpoint_write, iter_anchors, register_anchor
from cmlims.audit import audited_create, audited_update, chain_head, entry_canonical
from cmlims.models import AuditCheckpoint, AuditEntry
from cmlims.verification import audit_chain_verify
from tests.auditfixture.models import FixtureRecord
from tests.support.tamper import tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(make_user):
    """Twelve fixture entries after whatever the role sync wrote; returns their sequences."""
    actor = make_user("writer")
    start = chain_head().sequence
    for i in range(6):
        record = audited_create(FixtureRecord, actor=actor, name=f"R{i}")
        audited_update(record, actor=actor, quantity=i + 1)
    head = chain_head().sequence
    assert head - start == 12
    return list(range(start + 1, head + 1))


def verify_fails_at(sequence: int, kind: str) -> str:
    with pytest.raises(CommandError) as exc:
        call_command("verify_audit")
    message = str(exc.value)
    assert f"BROKEN at entry #{sequence} ({kind})" in message, message
    return message


def test_an_intact_trail_verifies(trail, capsys):
    audit_checkpoint_write()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "Audit trail intact" in out and f"head #{trail[-1]}" in out


@pytest.mark.req("README-AUDIT-CHAIN")
def test_an_edited_entry_is_caught_by_its_hmac(trail):
    target = trail[4]
    tamper("UPDATE cmlims_auditentry SET reason = %s WHERE sequence = %s", ["nothing happened", target])
    message = verify_fails_at(target, "hmac")
    assert "edited" in message


def test_a_changed_diff_value_is_caught(trail):
    target = trail[3]  # a "changed" entry: rewrite its new value
    entry = AuditEntry.objects.get(sequence=target)
    forged = {k: [old, 999] for k, (old, _new) in entry.changes.items()}
    import json

    tamper("UPDATE cmlims_auditentry SET changes = %s WHERE sequence = %s", [json.dumps(forged), target])
    verify_fails_at(target, "hmac")


@pytest.mark.req("README-AUDIT-CHAIN")
def test_a_deleted_middle_entry_is_a_gap(trail):
    target = trail[5]
    tamper("DELETE FROM cmlims_auditentry WHERE sequence = %s", [target])
    message = verify_fails_at(target, "gap")
    assert f"#{target} missing before #{target + 1}" in message


def test_a_deleted_and_renumbered_entry_breaks_the_link(trail):
    """The attacker closes the gap by renumbering: the prev_hash link (and each HMAC) gives it away."""
    target = trail[5]
    tamper("DELETE FROM cmlims_auditentry WHERE sequence = %s", [target])
    # Through negative numbers: PostgreSQL checks the unique sequence row by row, in whatever order the rows
    # lie on disk, so a one-step "sequence - 1" collides whenever earlier tests left the heap out of order.
    tamper("UPDATE cmlims_auditentry SET sequence = -(sequence - 1) WHERE sequence > %s", [target])
    tamper("UPDATE cmlims_auditentry SET sequence = -sequence WHERE sequence < 0", [])
    verify_fails_at(target, "link")


@pytest.mark.req("README-AUDIT-CHAIN")
def test_the_newest_entries_cut_off_are_caught_by_a_checkpoint(trail):
    checkpoint = audit_checkpoint_write()
    assert checkpoint.sequence == trail[-1]
    # Nothing in the chain itself is wrong after a clean cut: only the anchor shows it.
    cut_from = trail[-3]
    tamper("DELETE FROM cmlims_auditentry WHERE sequence >= %s", [cut_from])
    message = verify_fails_at(cut_from, "truncated")
    assert f"anchors entry #{trail[-1]} but the chain ends at #{cut_from - 1}" in message


def test_the_newest_entries_cut_off_are_caught_by_any_registered_anchor(trail, make_user):
    """Signatures and documents store the head too (here the core's own esign.Signature table)."""
    assert any(source.model_label == "esign.Signature" for source in anchor_sources())
    head = chain_head()
    _store_signature_anchor(make_user("qa"), head)
    assert [a.sequence for a in iter_anchors() if a.source == "esign.Signature"] == [head.sequence]
    tamper("DELETE FROM cmlims_auditentry WHERE sequence > %s", [head.sequence - 2])
    verify_fails_at(head.sequence - 1, "truncated")


def _store_signature_anchor(user, head) -> None:
    """A signature row as the signing service stores it (only the anchor fields matter here)."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from cmlims.audit import audited_create as create
    from cmlims.esign.models import Signature

    record = FixtureRecord.objects.first()
    create(
        Signature, actor=user, clean=False,
        content_type=ContentType.objects.get_for_model(FixtureRecord), object_id=str(record.pk), signer=user,
        printed_name="Qa Tester", meaning="released", signed_at=timezone.now(), field_list_version="v1",
        signed_fields=["name"], content={"name": record.name}, content_sha256="0" * 64,
        chain_sequence=head.sequence, chain_hash=head.hash,
    )


def test_an_entry_rewritten_with_a_plain_sha256_is_caught_by_the_hmac(trail):
    """The attacker edits an entry and recomputes every later hash, but without the key: plain SHA-256."""
    target = trail[2]
    tamper("UPDATE cmlims_auditentry SET username = %s WHERE sequence = %s", ["someone-else", target])
    prev = AuditEntry.objects.get(sequence=target - 1).hash
    for entry in AuditEntry.objects.filter(sequence__gte=target).order_by("sequence"):
        entry.prev_hash = prev
        forged = hashlib.sha256((prev + entry_canonical(entry)).encode()).hexdigest()
        tamper("UPDATE cmlims_auditentry SET prev_hash = %s, hash = %s WHERE sequence = %s",
               [prev, forged, entry.sequence])
        prev = forged
    report = audit_chain_verify()
    assert {p.kind for p in report.problems} == {"hmac"}  # links are consistent; the HMACs are not
    verify_fails_at(target, "hmac")


def test_a_forged_checkpoint_is_caught(trail):
    checkpoint = audit_checkpoint_write()
    tamper("UPDATE cmlims_auditcheckpoint SET sequence = %s WHERE id = %s", [trail[0], checkpoint.pk])
    verify_fails_at(trail[0], "checkpoint")


def test_checkpoints_are_written_only_when_the_head_moved(trail):
    first = audit_checkpoint_write()
    assert audit_checkpoint_write() is None
    assert AuditCheckpoint.objects.count() == 1
    assert (first.sequence, first.hash) == chain_head()


def test_a_registered_anchor_model_is_checked(trail):
    """Apps register their own anchor tables; a label not installed in this deployment is ignored."""
    from cmlims import anchors

    register_anchor("nosuchapp.Thing")
    try:
        assert audit_chain_verify().ok
    finally:
        anchors._SOURCES.pop("nosuchapp.thing")


def test_postgresql_refuses_update_and_delete_of_entries_to_the_application(require_postgres, trail):
    audit_checkpoint_write()
    for sql in ("UPDATE cmlims_auditentry SET reason = 'x'", "DELETE FROM cmlims_auditentry",
                "UPDATE cmlims_auditcheckpoint SET hash = 'x'"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert audit_chain_verify().ok


@pytest.mark.req("README-REC-SQLITE-APPEND-ONLY", "P11-11.10e")
def test_sqlite_refuses_update_and_delete_of_entries_as_postgresql_does(trail):
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL trigger has its own test")
    audit_checkpoint_write()
    for sql in ("UPDATE cmlims_auditentry SET reason = 'x'", "DELETE FROM cmlims_auditentry",
                "UPDATE cmlims_auditcheckpoint SET hash = 'x'", "DELETE FROM cmlims_auditcheckpoint"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert audit_chain_verify().ok
    # Whoever holds the file can drop the triggers (tamper does): then the chain is what tells.
    tamper("UPDATE cmlims_auditentry SET reason = 'x' WHERE sequence = %s", [trail[2]])
    assert not audit_chain_verify().ok
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM cmlims_auditentry")  # and the triggers are back after it


@pytest.mark.req("README-REC-SQLITE-APPEND-ONLY")
def test_the_sqlite_triggers_refuse_update_and_delete_on_any_database_backend():
    """The trigger SQL itself, on an SQLite file of its own (so it is proved on a PostgreSQL run too)."""
    import sqlite3

    from cmlims.audit.sqlite_guard import TABLES, sqlite_append_only_install

    db = sqlite3.connect(":memory:")
    for table in TABLES:
        db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, reason TEXT)")
        db.execute(f"INSERT INTO {table} (reason) VALUES ('kept')")
    sqlite_append_only_install(db.cursor())
    for table in TABLES:
        for sql in (f"UPDATE {table} SET reason = 'x'", f"DELETE FROM {table}"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(sql)
        db.execute(f"INSERT INTO {table} (reason) VALUES ('appended')")  # appending stays possible
        assert [r for (r,) in db.execute(f"SELECT reason FROM {table} ORDER BY id")] == ["kept", "appended"]


@pytest.mark.django_db(transaction=True)
def test_the_checkpoint_task_runs_on_a_real_worker(celery_worker_process, make_user):
    from cmlims.tasks import audit_checkpoint

    actor = make_user("beat")
    with transaction.atomic():
        audited_create(FixtureRecord, actor=actor, name="R-beat")
    head = chain_head()
    assert audit_checkpoint.apply_async(queue="default").get(timeout=60) == head.sequence
    assert AuditCheckpoint.objects.get().hash == head.hash


@pytest.mark.django_db(transaction=True)
def test_the_nightly_verification_runs_on_a_real_worker_and_reports_a_broken_chain(celery_worker_process,
                                                                                   make_user):
    from cmlims.tasks import audit_verify

    actor = make_user("night")
    with transaction.atomic():
        audited_create(FixtureRecord, actor=actor, name="R-night")
    result = audit_verify.apply_async(queue="default").get(timeout=60)
    assert result["ok"] and result["entries"] == chain_head().sequence
    with transaction.atomic():
        tamper("UPDATE cmlims_auditentry SET reason = 'x' WHERE sequence = %s", [chain_head().sequence])
    result = audit_verify.apply_async(queue="default").get(timeout=60)
    assert not result["ok"] and f"BROKEN at entry #{chain_head().sequence} (hmac)" in result["summary"]


@pytest.mark.req("README-AUDIT-CHAIN")
def test_generated_documents_anchor_the_chain_and_queued_ones_are_skipped(trail, make_user):
    from cmlims.documents.models import DocumentJob

    user = make_user("printer")
    head = chain_head()
    DocumentJob.objects.create(kind="certificate_of_analysis", requested_by=user)  # queued: no anchor yet
    done = DocumentJob.objects.create(kind="certificate_of_analysis", requested_by=user,
                                      chain_sequence=head.sequence, chain_hash=head.hash)
    assert [a.object_id for a in iter_anchors() if a.source == "documents.DocumentJob"] == [str(done.pk)]
    assert audit_chain_verify().ok
    tamper("DELETE FROM cmlims_auditentry WHERE sequence = %s", [head.sequence])
    verify_fails_at(head.sequence, "truncated")
