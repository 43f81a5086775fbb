"""``entries_deferred``: several appends in one transaction become one, at the end of the block (B7's label job
completion holds the chain's lock only for that append and the commit)."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cmlims.audit import (
    Action,
    PendingEntry,
    append_entries,
    audit_record,
    audited_bulk_create,
    chain_head,
    entries_deferred,
)
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from tests.auditfixture.models import FixtureRecord

pytestmark = pytest.mark.django_db


def _locks(queries) -> int:
    return sum("pg_advisory_xact_lock" in q["sql"] for q in queries)


@pytest.mark.req("README-AUDIT-CHAIN")
def test_deferred_entries_are_appended_once_in_call_order_and_the_chain_verifies(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    before = chain_head().sequence
    with transaction.atomic(), CaptureQueriesContext(connection) as queries, entries_deferred():
        first = audited_bulk_create(FixtureRecord, [FixtureRecord(name=f"A{n}") for n in range(3)], actor=alice)
        assert AuditEntry.objects.filter(sequence__gt=before).count() == 0  # held back inside the block
        second = audited_bulk_create(FixtureRecord, [FixtureRecord(name="B0")], actor=bob, reason="why")
        append_entries(actor=bob, pending=[PendingEntry(Action.CHANGED, "auditfixture.fixturerecord",
                                                        str(second[0].pk), "B0", {"quantity": [0, 1]}, "")])
    assert _locks(queries.captured_queries) == 1
    entries = list(AuditEntry.objects.filter(sequence__gt=before).order_by("sequence"))
    assert [(e.username, e.action, e.object_id, e.reason) for e in entries] == [
        *[("alice", Action.CREATED, str(r.pk), "") for r in first],
        ("bob", Action.CREATED, str(second[0].pk), "why"), ("bob", Action.CHANGED, str(second[0].pk), "")]
    assert [e.sequence for e in entries] == list(range(before + 1, before + 6))
    assert audit_chain_verify().ok


@pytest.mark.req("README-AUDIT-CHAIN")
def test_nothing_is_appended_when_the_block_fails_and_audit_record_is_refused_inside(make_user):
    alice = make_user("alice")
    before = chain_head().sequence
    with pytest.raises(ValueError), transaction.atomic(), entries_deferred():
        audited_bulk_create(FixtureRecord, [FixtureRecord(name="X")], actor=alice)
        raise ValueError("the change fails")
    assert chain_head().sequence == before and not FixtureRecord.objects.filter(name="X").exists()
    with pytest.raises(RuntimeError, match="inside entries_deferred"), transaction.atomic(), entries_deferred():
        audit_record(actor=alice, action=Action.CHANGED, object_type="x", object_id="1")
