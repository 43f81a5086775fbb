"""Stored signature checks: list pages read each sign-off's last answer of "changed after signing?"; every
audited write to a record the signature covers marks it stale in the write's transaction (the list then checks
it from the records); a refresh stores an answer only if no write came after it; the nightly sweep finds a
change made outside the services."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections, models, transaction

from batches.models import CellSource, CMLot, Harvest, LotStatus, Vial, VialStatus
from batches.services.lots import lot_transition
from cmlims.audit import audited_update, audited_void
from cmlims.esign.models import SignatureCheck
from cmlims.esign.services import signature_checks_refresh
from cmlims.models import AuditEntry
from cmlims.periodic import beat_schedule
from qc.models import LotAuditReview, QCResult
from tests.support.builders import lot_at, lot_release, pass_all
from tests.support.tamper import tamper

pytestmark = pytest.mark.django_db
REQ = ("INTEG-SIGN-LIST-CHECK", "P11-11.70")


@pytest.fixture
def released(chain, spec, qc2):
    lot = lot_at(chain, LotStatus.PACKAGED)
    pass_all(lot, analyst=chain.lab1, approver=qc2)
    return lot_release(lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc), officer=chain.qc)


def _check(lot) -> SignatureCheck:
    return SignatureCheck.objects.get(subject_id=str(lot.pk))


def _listed(client, lot) -> dict:
    return next(i for i in client.get("/api/v1/lots/").json()["results"] if i["lot_number"] == lot.lot_number)[
        "release"]


def _changed_value(field: models.Field, value):
    """Another valid value of ``field`` (what a correction after signing would write)."""
    if isinstance(field, models.DecimalField):
        return (value or Decimal(0)) + Decimal("1")
    if isinstance(field, models.IntegerField):
        return (value or 0) + 1
    if isinstance(field, models.DateTimeField):
        return value - timedelta(minutes=5)
    if isinstance(field, models.DateField):
        return value - timedelta(days=1)
    return f"{value} (corrected)"


# One signed field per record kind the lot's v2 sign-off is built from (qc.signed_content).
SIGNED_FIELD_OF = {
    CellSource: "eligibility_notes", "bank": "vials_frozen", "culture": "vessel", "passage": "vessel",
    Harvest: "volume_ml", "contribution": "volume_ml", "run": "dryer", "phase": "shelf_temperature_actual_c",
    "packaging": "vials_rejected", QCResult: "instrument", LotAuditReview: "entries_reviewed", CMLot: "expiry",
}


def _records(lot, chain) -> dict:
    lot = CMLot.objects.get(pk=lot.pk)
    return {
        CellSource: CellSource.objects.get(pk=chain.source.pk), "bank": chain.bank, "culture": chain.culture,
        "passage": chain.culture.passages.get(), Harvest: Harvest.objects.get(contributions__lot=lot),
        "contribution": lot.contributions.get(), "run": lot.lyophilisation_run,
        "phase": lot.lyophilisation_run.phases.first(), "packaging": lot.packaging_run,
        QCResult: QCResult.objects.filter(lot=lot).first(), LotAuditReview: LotAuditReview.objects.get(lot=lot),
        CMLot: lot,
    }


@pytest.mark.req(*REQ, "INTEG-SIGN-GENEALOGY")
def test_a_write_to_any_record_a_signoff_covers_marks_its_check_stale_and_the_list_shows_it_at_once(
        released, chain, auth_client):
    client = auth_client(chain.qc)
    # Stale from signing: a write that committed while the content was built found no check to mark.
    assert _check(released).stale and _listed(client, released)["checked_at"] is None
    assert signature_checks_refresh() == {"checked": 1, "stored": 1, "changed": 0}
    check = _check(released)
    assert not check.stale and not check.changed_after_signing and check.checked_at
    assert _listed(client, released)["checked_at"] is not None

    for kind, name in SIGNED_FIELD_OF.items():
        record = _records(released, chain)[kind]
        record = type(record).objects.get(pk=record.pk)
        field = record._meta.get_field(name)
        generation = _check(released).generation
        audited_update(record, actor=chain.lab1, reason="corrected after release", clean=False,
                       **{name: _changed_value(field, getattr(record, field.attname))})
        check = _check(released)
        assert check.stale and check.generation == generation + 1, kind
        listed = _listed(client, released)
        assert listed["changed_after_signing"] and listed["checked_at"] is None, kind  # checked from the records
        named = "audit_review" if kind is LotAuditReview else f".{field.attname}"  # the review is one key
        assert any(f.endswith(named) for f in listed["changed_fields"]), (kind, listed)
        counts = signature_checks_refresh()
        assert counts["checked"] == counts["stored"] == 1, kind
        check = _check(released)
        assert not check.stale and check.changed_after_signing and listed["changed_fields"] == check.changed_fields
        assert _listed(client, released)["changed_fields"] == check.changed_fields, kind

    # A voided vial changes the signed count.
    vial = Vial.objects.filter(lot=released).first()
    audited_void(vial, actor=chain.lab1, reason="broken in storage")
    assert _check(released).stale
    signature_checks_refresh()
    assert "vials.count" in _check(released).changed_fields

    # Investigations opened after the release (a complaint), on the lot and on one of its results, and their
    # progress: each is part of what the release signed.
    from cmlims.investigations.models import Kind
    from cmlims.investigations.services import investigation_open, investigation_update

    result = QCResult.objects.filter(lot=released).first()
    for subject in (CMLot.objects.get(pk=released.pk), result):
        inv = investigation_open(subject=subject, kind=Kind.DEVIATION, title="complaint", actor=chain.qc)
        assert _check(released).stale, type(subject).__name__
        signature_checks_refresh()
        assert any(f.startswith(f"investigation[{inv.number}]") for f in _check(released).changed_fields)
        investigation_update(investigation=inv, actor=chain.qc, root_cause="label smudged", reason="triage")
        assert _check(released).stale, type(subject).__name__
        signature_checks_refresh()
        assert f"investigation[{inv.number}].root_cause" in _check(released).changed_fields


@pytest.mark.req(*REQ)
def test_a_change_to_unsigned_fields_leaves_the_check_fresh(released, chain):
    from qc.services.hold import lot_hold

    signature_checks_refresh()
    lot_hold(lot=CMLot.objects.get(pk=released.pk), actor=chain.qc, reason="customer complaint triage")
    vial = Vial.objects.filter(lot=released).first()
    audited_update(vial, actor=chain.lab1, reason="allocated to an order", clean=False, status=VialStatus.ALLOCATED)
    assert AuditEntry.objects.filter(object_type="batches.vial", object_id=str(vial.pk), action="changed").exists()
    assert not _check(released).stale, "a hold or a vial's status (not signed) makes no signed content stale"


@pytest.mark.req(*REQ)
def test_the_nightly_sweep_finds_a_change_made_outside_the_services(released, chain, auth_client):
    client = auth_client(chain.qc)
    signature_checks_refresh()
    with transaction.atomic():
        tamper("UPDATE batches_cmlot SET volume_in_ml = volume_in_ml + 1 WHERE id = %s", [released.pk])
    # No audit entry, so nothing was marked: the list still shows the stored answer, the lot's page checks now.
    assert _listed(client, released)["changed_after_signing"] is False
    detail = client.get(f"/api/v1/lots/{released.lot_number}/").json()["release"]
    assert detail["changed_after_signing"] and detail["checked_at"] is None
    assert signature_checks_refresh() == {"checked": 0, "stored": 0, "changed": 0}, "nothing stale"
    assert signature_checks_refresh(everything=True) == {"checked": 1, "stored": 1, "changed": 1}
    listed = _listed(client, released)
    assert listed["changed_after_signing"] and listed["changed_fields"] == ["lot.volume_in_ml"]


@pytest.mark.req(*REQ)
def test_refresh_and_sweep_are_periodic_tasks():
    import cmlims.esign.tasks  # noqa: F401 - registers them, as the worker's autodiscovery does

    schedule = beat_schedule()
    assert schedule["signature-checks-refresh"]["task"] == "cmlims.signature_checks_refresh"
    assert schedule["signature-checks-refresh"]["schedule"] == 60
    assert schedule["signature-checks-sweep"]["task"] == "cmlims.signature_checks_sweep"
    assert schedule["signature-checks-sweep"]["schedule"] == 86400


@pytest.mark.req(*REQ)
@pytest.mark.django_db(transaction=True)
def test_the_refresh_task_runs_on_a_real_worker(released, chain, celery_worker_process):
    from cmlims.esign.tasks import signature_checks_refresh_task

    harvest = Harvest.objects.get(contributions__lot=released)
    audited_update(harvest, actor=chain.lab1, reason="re-measured", volume_ml=Decimal("650"))
    assert signature_checks_refresh_task.apply_async(queue="default").get(timeout=60) == {
        "checked": 1, "stored": 1, "changed": 1}
    assert _check(released).changed_fields == ["harvest[CU-0001-H1].volume_ml"]


def _wait_until_blocked(statement: str, outcome: dict, timeout: float = 30.0) -> None:
    """Until another backend waits on a lock while running ``statement`` (PostgreSQL's own view of it)."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline and not outcome:
            # Inside a transaction the activity view is a snapshot taken at its first read: drop it each time.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND query LIKE %s AND pid <> pg_backend_pid()", [f"{statement}%"])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"no backend blocked on {statement!r}; the racer: {outcome or 'still running'}")


@pytest.mark.req(*REQ)
@pytest.mark.django_db(transaction=True)
def test_a_refresh_that_read_the_records_before_a_write_does_not_store_its_answer(released, chain):
    """The sweep reads the check's generation and the records while a write is in flight (not committed: the
    sweep sees the old records), then waits on the write's lock of the check row; when the write commits, its
    answer ("unchanged", from the old records) is refused because the generation moved on."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's row locks are what this race is about (SQLite serialises whole writes)")
    outcome: dict = {}

    def sweep() -> None:
        try:
            outcome["counts"] = signature_checks_refresh(everything=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["counts"] = exc
        finally:
            connections.close_all()

    with transaction.atomic():
        harvest = Harvest.objects.get(contributions__lot=released)
        audited_update(harvest, actor=chain.lab1, reason="re-measured", volume_ml=Decimal("650"))
        racer = threading.Thread(target=sweep)
        racer.start()
        _wait_until_blocked('UPDATE "esign_signaturecheck"', outcome)
    racer.join(timeout=60)
    assert not racer.is_alive()
    assert outcome["counts"] == {"checked": 1, "stored": 0, "changed": 0}
    check = _check(released)
    assert check.stale and not check.changed_after_signing, "the stale mark of the write stands"
    assert signature_checks_refresh() == {"checked": 1, "stored": 1, "changed": 1}
