"""Issue 17 item 3: a freeze-drying run recorded on one admin page (loading, the three phases, completion),
all or nothing, through the drying services; refusals named by field label on the field and at the top."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.contrib.messages import get_messages

from batches.models import LotStatus, LyophilisationPhase, LyophilisationRun
from batches.services import drying
from cmlims.models import AuditEntry
from tests.support.builders import lot_at, process, t

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)
NEW = "/admin/batches/lyophilisationrun/record/"
PHASES = (("freezing", "-45", "-44.6", "1000", "995"), ("primary_drying", "-25", "-24.8", "0.1", "0.12"),
          ("secondary_drying", "25", "24.9", "0.05", "0.05"))


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _at(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


def _phase_data(start: dt.datetime, phases=PHASES, *, first: int = 0) -> dict:
    """Phase rows of 4 h each, the ``first`` one starting 4 h × first after ``start``."""
    data = {}
    for i, (phase, shelf_sp, shelf, pressure_sp, pressure) in enumerate(phases, start=first):
        data.update({
            f"{phase}-shelf_temperature_setpoint_c": shelf_sp, f"{phase}-shelf_temperature_actual_c": shelf,
            f"{phase}-chamber_pressure_setpoint_mbar": pressure_sp, f"{phase}-chamber_pressure_actual_mbar": pressure,
            f"{phase}-started_at": _at(start + dt.timedelta(hours=4 * i)),
            f"{phase}-ended_at": _at(start + dt.timedelta(hours=4 * i + 4)),
        })
    return data


def _completion(start: dt.datetime) -> dict:
    end = start + dt.timedelta(hours=12)
    return {"completion-ended_at": _at(end), "completion-end_of_primary_drying_method": "pressure_rise",
            "completion-end_of_primary_drying_at": _at(start + dt.timedelta(hours=8)),
            "completion-end_of_primary_drying_evidence": "PRT < 0.01 mbar/min",
            "completion-stoppering_method": "nitrogen", "completion-stoppering_pressure_mbar": "800",
            "completion-stoppered_at": _at(end), "completion-alarm_count": "0", "completion-alarms": ""}


def _loading(lot, start: dt.datetime) -> dict:
    return {"lot": lot.pk, "run_number": "LYO-ONE", "dryer": "LYO-A", "recipe": "CM-1ML", "recipe_version": "3",
            "vials_loaded": "40", "fill_volume_ml": "0.9", "started_at": _at(start), "performed_at": _at(start)}


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.req("FEAT-ADM-DRYINGPAGE")
def test_a_whole_run_is_recorded_from_one_page(chain, client):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)  # after the concentration (t(1, 4)), within the day: not a late entry
    client.force_login(chain.lab1)
    page = client.get(NEW)
    assert page.status_code == 200
    assert [lot.pk] == [c.pk for c in page.context["page"].loading.fields["lot"].queryset]
    response = client.post(NEW, {**_loading(lot, start), **_phase_data(start), **_completion(start), "reason": ""})
    assert response.status_code == 302, response.context and response.context["summary"]
    run = LyophilisationRun.objects.get(run_number="LYO-ONE")
    assert response["Location"] == f"/admin/batches/lyophilisationrun/{run.pk}/change/"
    assert _messages(response) == [f"Freeze-drying run LYO-ONE recorded for lot {lot}: phases freezing, primary "
                                   "drying, secondary drying; run completed."]
    assert run.is_complete and run.completed_by == chain.lab1 and run.stoppering_pressure_mbar == Decimal("800")
    assert run.lot.status == LotStatus.FREEZE_DRYING
    primary = run.phases.get(phase="primary_drying")
    assert primary.chamber_pressure_actual_mbar == Decimal("0.12") and primary.duration_minutes == 240
    assert primary.started_at == start.replace(second=0, microsecond=0) + dt.timedelta(hours=4)
    # Each part is audited by its own service, by the person who recorded it.
    phase_ids = {str(p.pk) for p in run.phases.all()}
    created = AuditEntry.objects.filter(object_type="batches.lyophilisationphase", action="created",
                                        username="lab1")
    assert {e.object_id for e in created} == phase_ids
    assert AuditEntry.objects.filter(object_type="batches.lyophilisationrun", object_id=str(run.pk),
                                     username="lab1").count() == 2  # loaded, completed


@pytest.mark.req("FEAT-ADM-DRYINGPAGE")
def test_an_open_run_shows_its_recorded_phases_and_takes_the_rest(chain, client):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)
    run = drying.lyophilisation_run_start(lot=lot, actor=chain.lab1, run_number="LYO-OPEN", dryer="LYO-A",
                                          recipe="CM-1ML", recipe_version="3", vials_loaded=40,
                                          fill_volume_ml=Decimal("0.9"), performed_at=start, started_at=start)
    drying.lyophilisation_phase_record(
        run=run, phase="freezing", actor=chain.lab1, shelf_temperature_setpoint_c=Decimal("-45"),
        shelf_temperature_actual_c=Decimal("-44.6"), chamber_pressure_setpoint_mbar=Decimal("1000"),
        chamber_pressure_actual_mbar=Decimal("1000"), started_at=start, ended_at=start + dt.timedelta(hours=4))
    client.force_login(chain.lab2)
    change = client.get(f"/admin/batches/lyophilisationrun/{run.pk}/change/").content.decode()
    url = f"/admin/batches/lyophilisationrun/{run.pk}/record/"
    assert f'href="{url}"' in change  # the change page leads to the one-page record
    page = client.get(url)
    html = page.content.decode()
    assert "freezing" in html and "-44.6" in html and "recorded" in html
    assert [f.phase for f in page.context["page"].phases] == ["primary_drying", "secondary_drying"]
    response = client.post(url, {**_phase_data(start, PHASES[1:], first=1), "reason": ""})
    assert response.status_code == 302, response.context["summary"]
    run.refresh_from_db()
    assert not run.is_complete
    assert sorted(run.phases.values_list("phase", flat=True)) == ["freezing", "primary_drying", "secondary_drying"]
    assert run.phases.get(phase="primary_drying").started_at == (start.replace(second=0, microsecond=0)
                                                                 + dt.timedelta(hours=4))
    assert _messages(response)[-1].endswith("run open.")


@pytest.mark.req("FEAT-ADM-DRYINGPAGE")
def test_a_refusal_names_the_phase_and_field_by_label_and_records_nothing(chain, client):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)
    client.force_login(chain.lab1)
    data = {**_loading(lot, start), **_phase_data(start), "reason": ""}
    data["primary_drying-started_at"] = _at(start + dt.timedelta(hours=3))  # before freezing ended (4 h)
    response = client.post(NEW, data)
    assert response.status_code == 200
    summary = [e["text"] for e in response.context["summary"]]
    assert summary == ["Primary drying · Started: must not be before freezing ended (2026-11-20 00:00 UTC)"]
    html = response.content.decode()
    assert '<a href="#id_primary_drying-started_at">Primary drying · Started: must not be before freezing ended' in html
    assert "started_at" not in "".join(summary)
    # All or nothing: the loading and the freezing phase written before the refusal are rolled back.
    assert not LyophilisationRun.objects.filter(run_number="LYO-ONE").exists()
    assert not LyophilisationPhase.objects.exists()
    lot.refresh_from_db()
    assert lot.status == LotStatus.POOLED


@pytest.mark.req("FEAT-ADM-DRYINGPAGE")
def test_a_partly_filled_phase_and_a_half_completion_are_refused_field_by_field(chain, client):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)
    client.force_login(chain.lab1)
    data = {**_loading(lot, start), **_phase_data(start, PHASES[:1]), "reason": "",
            "secondary_drying-shelf_temperature_actual_c": "24.9", "completion-stoppering_method": "vacuum",
            "completion-alarm_count": "0"}
    response = client.post(NEW, data)
    assert response.status_code == 200
    summary = [e["text"] for e in response.context["summary"]]
    assert "Secondary drying · Started: needed to record this phase" in summary
    assert "Secondary drying · Shelf set point (°C): needed to record this phase" in summary
    assert "Ended at: needed to complete the run" in summary
    assert not any("Secondary drying · Shelf actual" in s for s in summary)
    assert not LyophilisationRun.objects.exists()


@pytest.mark.req("FEAT-ADM-DRYINGPAGE")
def test_only_lab_staff_record_a_run(chain, client, make_user):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)
    for user in (chain.qc, make_user("root", is_superuser=True, is_staff=True)):
        client.force_login(user)
        assert client.get(NEW).status_code == 403
        assert client.post(NEW, {**_loading(lot, start), "reason": ""}).status_code == 403
        assert "Record a run on one page" not in client.get("/admin/batches/lyophilisationrun/").content.decode()
    assert not LyophilisationRun.objects.exists()
    client.force_login(chain.lab1)
    assert "Record a run on one page" in client.get("/admin/batches/lyophilisationrun/").content.decode()


@pytest.mark.req("FEAT-ADM-DRYINGPAGE")
def test_a_skipped_phase_is_refused_in_words_at_the_top(chain, client):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)
    client.force_login(chain.lab1)
    response = client.post(NEW, {**_loading(lot, start), **_phase_data(start, PHASES[1:2], first=1), "reason": ""})
    assert response.status_code == 200
    assert [e["text"] for e in response.context["summary"]] == ["record freezing before primary drying",
                                                                "freezing is not recorded"]
    assert not LyophilisationRun.objects.exists()
