"""The audit API: one entry per changed row, field diffs, reasons, voiding, and an HMAC chain that never forks."""

import hashlib
import hmac
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from cmlims.audit import (
    GENESIS_HASH,
    Action,
    UnauditedWrite,
    audit_record,
    audited_bulk_create,
    audited_bulk_update,
    audited_create,
    audited_queryset_update,
    audited_save,
    audited_update,
    audited_void,
    chain_head,
    entry_canonical,
)
from cmlims.exceptions import InvalidInput
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from tests.auditfixture.models import FixtureRecord, FixtureSample
from tests.support.races import race

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(make_user):
    return make_user("alice")


def entries_for(obj):
    return list(AuditEntry.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)))


@pytest.mark.req("P11-11.10e", "RULE-8", "ALCOA")
def test_create_records_every_field_with_the_actor_and_request_id(actor):
    from cmlims import context

    with context.request_scope(request_id="req-123"):
        record = audited_create(FixtureRecord, actor=actor, name="R1", quantity=3)
    (entry,) = entries_for(record)
    assert entry.action == Action.CREATED
    assert entry.user == actor and entry.username == "alice"
    assert entry.request_id == "req-123"
    assert entry.changes["name"] == [None, "R1"]
    assert entry.changes["quantity"] == [None, 3]
    assert entry.object_repr == "R1"


@pytest.mark.req("P11-11.10e", "RULE-8")
def test_update_records_only_changed_fields_old_and_new(actor):
    record = audited_create(FixtureRecord, actor=actor, name="R1", quantity=3)
    audited_update(record, actor=actor, quantity=5)
    audited_update(record, actor=actor, quantity=5)  # no change: no entry
    created, changed = entries_for(record)
    assert changed.action == Action.CHANGED
    assert changed.changes == {"quantity": [3, 5]}


def test_audited_save_reads_the_stored_row_for_the_old_side(actor):
    record = audited_create(FixtureRecord, actor=actor, name="R1", quantity=3)
    stale = FixtureRecord.objects.get(pk=record.pk)
    audited_update(record, actor=actor, quantity=7)
    stale.name = "R1-renamed"
    audited_save(stale, actor=actor)
    last = entries_for(record)[-1]
    # The stale instance still holds quantity=3: the diff against the stored row shows it going back.
    assert last.changes == {"name": ["R1", "R1-renamed"], "quantity": [7, 3]}


def test_invalid_values_are_refused_naming_the_field(actor):
    with pytest.raises(InvalidInput) as exc:
        audited_create(FixtureRecord, actor=actor, name="R1", quantity=-1)
    assert "quantity" in exc.value.extra["fields"]
    assert AuditEntry.objects.filter(object_type="auditfixture.fixturerecord").count() == 0


@pytest.mark.req("A11-9", "RULE-8")
def test_reason_required_once_released_but_not_for_the_release_itself(actor):
    record = audited_create(FixtureRecord, actor=actor, name="R1")
    audited_update(record, actor=actor, released=True)  # releasing is not a change to a released record
    with pytest.raises(InvalidInput) as exc:
        audited_update(record, actor=actor, quantity=2)
    assert exc.value.extra["fields"] == {"reason": ["required to change a record that has been released or signed"]}
    with pytest.raises(InvalidInput):
        audited_save(FixtureRecord.objects.get(pk=record.pk), actor=actor, reason="   ")
    record = FixtureRecord.objects.get(pk=record.pk)
    record.quantity = 2
    audited_save(record, actor=actor, reason="count corrected after recount")
    assert entries_for(record)[-1].reason == "count corrected after recount"


def test_reason_required_on_bulk_paths_for_released_rows(actor):
    released = audited_create(FixtureRecord, actor=actor, name="R1", released=True)
    audited_create(FixtureRecord, actor=actor, name="R2")
    with pytest.raises(InvalidInput):
        audited_queryset_update(FixtureRecord.objects.all(), actor=actor, quantity=9)
    released.quantity = 9
    with pytest.raises(InvalidInput):
        audited_bulk_update([released], ["quantity"], actor=actor)
    assert audited_bulk_update([released], ["quantity"], actor=actor, reason="rework") == 1


@pytest.mark.req("A11-9", "README-NO-DELETE")
def test_void_needs_a_reason_and_keeps_the_row(actor):
    record = audited_create(FixtureRecord, actor=actor, name="R1")
    with pytest.raises(InvalidInput):
        audited_void(record, actor=actor, reason="")
    audited_void(record, actor=actor, reason="entered twice")
    record.refresh_from_db()
    assert record.is_voided and record.voided_by == actor and record.void_reason == "entered twice"
    last = entries_for(record)[-1]
    assert last.action == Action.VOIDED and last.reason == "entered twice"
    assert set(last.changes) == {"voided_at", "voided_by_id", "void_reason"}
    with pytest.raises(InvalidInput):
        audited_void(record, actor=actor, reason="again")


def test_bulk_create_writes_one_entry_per_row(actor):
    record = audited_create(FixtureRecord, actor=actor, name="R1")
    samples = audited_bulk_create(
        FixtureSample, [FixtureSample(record=record, label=f"S{i}") for i in range(5)], actor=actor
    )
    for sample in samples:
        (entry,) = entries_for(sample)
        assert entry.action == Action.CREATED and entry.changes["label"] == [None, sample.label]


def test_bulk_update_writes_one_entry_per_changed_row_and_only_the_named_fields(actor):
    record = audited_create(FixtureRecord, actor=actor, name="R1")
    samples = audited_bulk_create(FixtureSample, [FixtureSample(record=record, label=f"S{i}") for i in range(4)],
                                  actor=actor)
    for sample in samples[:3]:
        sample.value = Decimal("1.5")
        sample.label = "not written"  # not in fields: neither stored nor recorded
    assert audited_bulk_update(samples, ["value"], actor=actor) == 3
    for sample in samples[:3]:
        assert entries_for(sample)[-1].changes == {"value": [None, "1.5"]}
        sample.refresh_from_db()
        assert sample.label != "not written"
    assert len(entries_for(samples[3])) == 1


def test_queryset_update_with_an_expression_records_each_rows_values(actor):
    for i in range(3):
        audited_create(FixtureRecord, actor=actor, name=f"R{i}", quantity=i)
    changed = audited_queryset_update(FixtureRecord.objects.filter(quantity__gte=1), actor=actor,
                                      quantity=F("quantity") + 10)
    assert changed == 2
    for record in FixtureRecord.objects.filter(quantity__gte=1):
        assert entries_for(record)[-1].changes == {"quantity": [record.quantity - 10, record.quantity]}


@pytest.mark.req("README-AUDIT-CHAIN")
def test_the_chain_links_each_entry_to_the_previous_with_an_hmac(actor):
    before = chain_head()
    audited_create(FixtureRecord, actor=actor, name="R1")
    audit_record(actor=actor, action=Action.PRINTED, object_type="auditfixture.fixturerecord", object_id="1")
    entries = list(AuditEntry.objects.filter(sequence__gt=before.sequence).order_by("sequence"))
    assert [e.sequence for e in entries] == [before.sequence + 1, before.sequence + 2]
    prev = before.hash
    for entry in entries:
        assert entry.prev_hash == prev
        key = settings.AUDIT_HMAC_KEY.encode()
        assert entry.hash == hmac.new(key, (prev + entry_canonical(entry)).encode(), hashlib.sha256).hexdigest()
        # Not a plain SHA-256: without the key nobody can recompute it.
        assert entry.hash != hashlib.sha256((prev + entry_canonical(entry)).encode()).hexdigest()
        prev = entry.hash
    assert chain_head() == (entries[-1].sequence, entries[-1].hash)
    assert audit_chain_verify().ok


def test_an_entry_from_a_rolled_back_transaction_leaves_no_gap(actor):
    audited_create(FixtureRecord, actor=actor, name="R1")
    head = chain_head()
    with pytest.raises(RuntimeError), transaction.atomic():
        audited_create(FixtureRecord, actor=actor, name="R2")
        raise RuntimeError("abandoned")
    assert chain_head() == head
    audited_create(FixtureRecord, actor=actor, name="R3")
    assert chain_head().sequence == head.sequence + 1
    assert audit_chain_verify().ok


@pytest.mark.req("P11-11.10e", "README-AUDIT-CHAIN")
def test_the_trail_is_append_only_through_the_orm(actor):
    audited_create(FixtureRecord, actor=actor, name="R1")
    entry = AuditEntry.objects.last()
    for attempt in (
        entry.save,
        entry.delete,
        lambda: AuditEntry.objects.all().update(reason="x"),
        lambda: AuditEntry.objects.all().delete(),
        lambda: AuditEntry.objects.bulk_update([entry], ["reason"]),
        lambda: AuditEntry.objects.bulk_create([AuditEntry(sequence=entry.sequence + 1)]),
        lambda: AuditEntry(sequence=entry.sequence + 1, username="x", action="created", object_type="x",
                           object_id="1", prev_hash=entry.hash, hash=GENESIS_HASH).save(),
    ):
        with pytest.raises(UnauditedWrite):
            attempt()
    assert audit_chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_entries_are_written_only_inside_the_transaction_of_the_change(make_user):
    actor = make_user("outside")
    assert not connection.in_atomic_block
    with pytest.raises(UnauditedWrite):
        audit_record(actor=actor, action=Action.PRINTED, object_type="x", object_id="1")


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_on_two_postgresql_connections_never_fork(require_postgres, make_user):
    """Two threads, each with its own PostgreSQL connection, append at once: no fork, no duplicate sequence."""
    actor = make_user("racer")
    rounds = 25

    def writer(tag: str):
        def write() -> None:
            for i in range(rounds):
                with transaction.atomic():
                    record = audited_create(FixtureRecord, actor=actor, name=f"{tag}{i}")
                    audited_update(record, actor=actor, quantity=i + 1)
        return write

    errors = [o for o in race(writer("a"), writer("b")) if isinstance(o, BaseException)]
    assert not errors, errors
    sequences = list(AuditEntry.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, len(sequences) + 1))  # gap-free and unique
    assert AuditEntry.objects.filter(object_type="auditfixture.fixturerecord").count() == 2 * rounds * 2
    prev_hashes = list(AuditEntry.objects.values_list("prev_hash", flat=True))
    assert len(prev_hashes) == len(set(prev_hashes))  # no two entries share a parent: no fork
    report = audit_chain_verify()
    assert report.ok, report.problems


def test_a_large_bulk_change_chains_every_entry(actor):
    """Past COPY_THRESHOLD entries PostgreSQL appends with COPY; the chain and the returned ids are the same."""
    from cmlims.audit import COPY_THRESHOLD, PendingEntry, append_entries

    rows = COPY_THRESHOLD + 50
    records = audited_bulk_create(FixtureRecord, [FixtureRecord(name=f"L{i}") for i in range(rows)], actor=actor)
    for record in records:
        record.quantity = 4
    assert audited_bulk_update(records, ["quantity"], actor=actor) == rows
    assert AuditEntry.objects.filter(object_type="auditfixture.fixturerecord", action=Action.CHANGED).count() == rows
    entries = append_entries(actor=actor, pending=[
        PendingEntry(Action.PRINTED, "auditfixture.fixturerecord", str(r.pk), r.name, {"copies": 1}, "")
        for r in records
    ])
    stored = dict(AuditEntry.objects.filter(action=Action.PRINTED).values_list("sequence", "id"))
    assert {e.sequence: e.pk for e in entries} == stored
    assert audit_chain_verify().ok


def test_bulk_paths_reuse_the_callers_related_objects(actor, django_assert_max_num_queries):
    """``__str__`` and ``change_requires_reason()`` of a sample read its record: with the records
    select_related by the caller, 60 rows cost the same handful of queries as 1."""
    record = audited_create(FixtureRecord, actor=actor, name="Parent")
    audited_bulk_create(FixtureSample, [FixtureSample(record=record, label=f"S{i}") for i in range(60)], actor=actor)
    samples = list(FixtureSample.objects.select_related("record"))
    for sample in samples:
        sample.value = Decimal("2")
    # Savepoints, the locked read, the write, the chain lock (PostgreSQL), head, insert: none per row.
    with django_assert_max_num_queries(12):
        assert audited_bulk_update(samples, ["value"], actor=actor) == 60
    with django_assert_max_num_queries(14):
        assert audited_queryset_update(FixtureSample.objects.select_related("record"), actor=actor,
                                       value=Decimal("3")) == 60
    assert AuditEntry.objects.filter(object_repr="Parent/S59").count() == 3
