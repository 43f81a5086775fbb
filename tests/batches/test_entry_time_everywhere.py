"""Every time a client sends goes through cmlims.timing (issue 13 item 5): freeze-drying phases, a cell bank's
performed_at and a QC result's tested_at (API, CSV import, admin) are refused in the future or before the
record's previous step (400 naming the field); a late entry needs a reason and is marked in the audit trail.
A specification is never backdated (effective_from before its approval)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import LotStatus, LyophilisationPhase
from batches.services import drying, sources
from cmlims.exceptions import InvalidInput
from cmlims.models import AuditEntry
from qc.models import QCResult
from tests.support.builders import LATE, PASSWORD, enter, lot_at, process, sign_spec

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _created(obj) -> AuditEntry:
    return AuditEntry.objects.get(object_type=obj._meta.label_lower, object_id=str(obj.pk), action="created")


def _phase(run, phase, *, start, end, reason=""):
    return drying.lyophilisation_phase_record(
        run=run, phase=phase, actor=run.performed_by, shelf_temperature_setpoint_c=D("-45"),
        shelf_temperature_actual_c=D("-44.6"), chamber_pressure_setpoint_mbar=D("0.1"),
        chamber_pressure_actual_mbar=D("0.1"), started_at=start, ended_at=end, reason=reason)


@pytest.mark.req("RULE-TIME-1", "RULE-TIME-2")
def test_freeze_drying_phases_are_checked_in_order_and_late_ones_marked(clock, chain, auth_client, settings):
    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    lot = process(chain, lot_at(chain, LotStatus.POOLED), base=NOW)  # concentrated 20 h ago
    loaded = NOW - timedelta(hours=19)
    run = drying.lyophilisation_run_start(lot=lot, actor=chain.lab1, run_number="LYO-T", dryer="LYO-A",
                                          recipe="CM-1ML", recipe_version="3", vials_loaded=40,
                                          fill_volume_ml=D("0.9"), performed_at=loaded, started_at=loaded,
                                          reason=LATE)
    freezing = LyophilisationPhase.Phase.FREEZING
    with pytest.raises(InvalidInput) as err:  # before the run started
        _phase(run, freezing, start=loaded - timedelta(hours=1), end=loaded + timedelta(hours=3), reason=LATE)
    assert "run started" in err.value.extra["fields"]["started_at"][0]
    with pytest.raises(InvalidInput) as err:  # ends in the future
        _phase(run, freezing, start=NOW - timedelta(hours=2), end=NOW + timedelta(hours=2))
    assert "future" in err.value.extra["fields"]["ended_at"][0]
    with pytest.raises(InvalidInput) as err:  # ended 15 h ago (more than 2 h) without a reason
        _phase(run, freezing, start=loaded, end=loaded + timedelta(hours=4))
    assert "late entry" in err.value.extra["fields"]["reason"][0]
    first = _phase(run, freezing, start=loaded, end=loaded + timedelta(hours=4), reason="from the dryer's printout")
    entry = _created(first)
    assert entry.late_entry and entry.occurred_at == loaded + timedelta(hours=4)
    response = auth_client(chain.lab1).post(f"/api/v1/freeze-drying-runs/{run.run_number}/phases/", {
        "phase": "primary_drying", "shelf_temperature_setpoint_c": "-25", "shelf_temperature_actual_c": "-24.8",
        "chamber_pressure_setpoint_mbar": "0.1", "chamber_pressure_actual_mbar": "0.1",
        "started_at": (loaded + timedelta(hours=3)).isoformat(), "ended_at": (NOW - timedelta(hours=1)).isoformat(),
        "reason": LATE}, format="json")
    assert response.status_code == 400, response.content
    assert "before freezing ended" in response.json()["fields"]["started_at"][0]


@pytest.mark.req("RULE-TIME-1", "RULE-TIME-2")
def test_cell_bank_performed_at_is_checked_and_a_late_one_marked(clock, chain):
    master = chain.bank
    with pytest.raises(InvalidInput) as err:
        sources.cell_bank_create(
            actor=chain.lab1, code="WCB-F", kind="working", source=chain.source, parent_bank=master,
            passage_at_freeze=3, frozen_on=NOW.date(), vials_frozen=10, vials_on_hand=10,
            cells_per_vial=1_000_000, performed_at=NOW + timedelta(hours=1))
    assert "future" in err.value.extra["fields"]["performed_at"][0]
    with pytest.raises(InvalidInput) as err:
        sources.cell_bank_create(
            actor=chain.lab1, code="WCB-B", kind="working", source=chain.source, parent_bank=master,
            passage_at_freeze=3, frozen_on=NOW.date(), vials_frozen=10, vials_on_hand=10, cells_per_vial=1_000_000,
            performed_at=master.performed_at - timedelta(hours=1), reason=LATE)
    assert f"bank {master} was made" in err.value.extra["fields"]["performed_at"][0]
    with pytest.raises(InvalidInput) as err:
        sources.cell_bank_create(
            actor=chain.lab1, code="MCB-L", kind="master", source=chain.source,
            passage_at_freeze=3, frozen_on=NOW.date(), vials_frozen=10, vials_on_hand=10, cells_per_vial=1_000_000,
            performed_at=NOW - timedelta(hours=48))
    assert "late entry" in err.value.extra["fields"]["reason"][0]
    bank = sources.cell_bank_create(
        actor=chain.lab1, code="MCB-L", kind="master", source=chain.source,
        passage_at_freeze=3, frozen_on=NOW.date(), vials_frozen=10, vials_on_hand=10, cells_per_vial=1_000_000,
        performed_at=NOW - timedelta(hours=48), reason="frozen on Saturday, entered on Monday")
    assert _created(bank).late_entry and _created(bank).occurred_at == NOW - timedelta(hours=48)


@pytest.fixture
def tested_lot(clock, chain, qc2):
    sign_spec(qc2, chain.product, effective_days_ago=40)
    return lot_at(chain, LotStatus.PACKAGED)


@pytest.mark.req("RULE-TIME-1", "RULE-TIME-2", "P11-11.10e")
def test_qc_tested_at_is_checked_in_the_api_and_a_late_result_marked(tested_lot, chain, auth_client, settings):
    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    client = auth_client(chain.lab1)
    base = {"lot_number": tested_lot.lot_number, "test": "Bacterial endotoxin", "value": "3", "unit": "EU/mL"}
    before_pooling = client.post("/api/v1/qc/results/", dict(
        base, tested_at=(tested_lot.pooled_at - timedelta(hours=1)).isoformat()), format="json")
    assert before_pooling.status_code == 400 and "pooled" in before_pooling.json()["fields"]["tested_at"][0]
    late_at = NOW - timedelta(hours=3)
    late = client.post("/api/v1/qc/results/", dict(base, tested_at=late_at.isoformat()), format="json")
    assert late.status_code == 400 and "late entry" in late.json()["fields"]["reason"][0]
    ok = client.post("/api/v1/qc/results/", dict(base, tested_at=late_at.isoformat(),
                                                 reason="LAL plate read on Friday, entered Monday"), format="json")
    assert ok.status_code == 201, ok.content
    result = QCResult.objects.get(pk=ok.json()["id"])
    assert result.correction_reason == "" and result.supersedes is None  # a late entry is not a correction
    entry = _created(result)
    assert entry.late_entry and entry.occurred_at == late_at and entry.reason.startswith("LAL plate")
    timely = enter(tested_lot, "VEGF", "600", "pg/mL", analyst=chain.lab1)
    assert not _created(timely).late_entry


def _csv(rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["lot_number", "test", "value", "unit", "analyst", "tested_at", "instrument", "reason"])
    writer.writerows(rows)
    return SimpleUploadedFile("export.csv", out.getvalue().encode(), content_type="text/csv")


@pytest.mark.req("RULE-TIME-1", "RULE-TIME-2")
def test_csv_import_checks_tested_at_and_marks_late_rows(tested_lot, chain, auth_client, settings):
    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    client = auth_client(chain.lab1)
    number = tested_lot.lot_number
    late_at = (NOW - timedelta(hours=3)).isoformat()
    recent = (NOW - timedelta(hours=1)).isoformat()
    refused = client.post("/api/v1/qc/results/import/", {"file": _csv([
        [number, "pH (reconstituted)", "7.4", "pH", "lab1", late_at, "PH-1", ""],
        [number, "VEGF", "600", "pg/mL", "lab1", (NOW + timedelta(hours=2)).isoformat(), "ELISA", ""],
    ])}, format="multipart")
    assert refused.status_code == 400
    assert {(r["row"], r["column"]) for r in refused.json()["rows"]} == {(1, "reason"), (2, "tested_at")}
    assert not QCResult.objects.exists()
    ok = client.post("/api/v1/qc/results/import/", {"file": _csv([
        [number, "pH (reconstituted)", "7.4", "pH", "lab1", late_at, "PH-1", "meter export found on Monday"],
        [number, "VEGF", "600", "pg/mL", "lab1", recent, "ELISA", ""],
    ])}, format="multipart")
    assert ok.status_code == 201, ok.content
    entries = {e.changes["spec_item_id"][1]: e for e in AuditEntry.objects.filter(object_type="qc.qcresult")}
    ph = QCResult.objects.get(spec_item__test="pH (reconstituted)")
    vegf = QCResult.objects.get(spec_item__test="VEGF")
    assert entries[ph.spec_item_id].late_entry and entries[ph.spec_item_id].reason == "meter export found on Monday"
    assert not entries[vegf.spec_item_id].late_entry


@pytest.mark.req("RULE-TIME-1")
def test_admin_result_form_refuses_a_future_tested_at(tested_lot, chain, client):
    from qc.models import SpecItem

    client.force_login(chain.lab1)
    item = SpecItem.objects.get(test="VEGF")
    future = NOW + timedelta(hours=3)
    response = client.post("/admin/qc/qcresult/add/", {
        "lot": tested_lot.pk, "spec_item": item.pk, "value_entered": "600", "unit_entered": "pg/mL",
        "analyst": chain.lab1.pk, "instrument": "ELISA", "tested_at_0": future.date().isoformat(),
        "tested_at_1": future.time().isoformat(), "tested_at": future.isoformat(),
    }, follow=True)
    assert response.status_code == 200 and "future" in response.content.decode()
    assert not QCResult.objects.exists()


@pytest.mark.req("RULE-TIME-1", "README-SPEC-VERSIONS")
def test_a_specification_is_not_backdated(clock, chain, qc2):
    from qc.services.specs import specification_approve, specification_create
    from tests.support.builders import SMALL_PANEL, make_user

    author = make_user("spec-author", "QC officer")
    spec = specification_create(product=chain.product, title="CM release", actor=author, items=SMALL_PANEL)
    with pytest.raises(InvalidInput) as err:
        specification_approve(specification=spec, actor=qc2, username="qc2", password=PASSWORD,
                              effective_from=NOW - timedelta(days=1))
    assert "before its approval" in err.value.extra["fields"]["effective_from"][0]
    approved = specification_approve(specification=spec, actor=qc2, username="qc2", password=PASSWORD)
    assert approved.effective_from == NOW
