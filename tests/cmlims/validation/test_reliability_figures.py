"""The reliability and security figures of the validation pack, from a real pytest run's JUnit report and the
fuzz and load reports beside it."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from cmlims.validation.matrix import junit_read
from cmlims.validation.reliability import NOT_RUN, figures_markdown, reliability_figures, reports_read

pytestmark = pytest.mark.req("VAL-RELIABILITY-FIGURES")
FIXTURE_REGISTER = Path(__file__).with_name("fixture_register.yaml")

# The sample is written as tests/reliability/test_hostile_input.py's module would be named, so its cases count.
MATRIX_TESTS = '''
import pytest


def test_api_cells(record_property):
    record_property("figure.api_permission_cells", 21)
    record_property("figure.api_operations", 3)
    record_property("figure.api_roles", 7)


@pytest.mark.req("REQ-PASS")
def test_admin_cells(record_property):
    record_property("figure.admin_page_cells", 12)
    record_property("figure.admin_pages", 2)
    record_property("figure.admin_roles", 6)
    assert 1 == 2  # the figure of a failing test is shown as failing
'''

FUZZ = {"lab staff": {"operations": 118, "examples": 1011, "server_errors": 0, "mostly_rejected": [{}, {}]},
        "QC officer": {"operations": 118, "examples": 990, "server_errors": 1, "mostly_rejected": []}}
SOAK = {"commit": "abc1234", "users": 20, "duration_s": 60, "requests": 900, "rps": 15.0, "errors": 0,
        "kinds": {"lot read": {"p95_ms": 220}, "signature": {"p95_ms": 340}}, "jobs_finished": 27,
        "jobs_requested": 27, "checks": {"no vial in two shipments": {"ok": True}, "verify_audit clean": {"ok": True}},
        "advisories": []}


def by_what(figures):
    return {f.what: f for f in figures}


def test_figures_come_from_the_run_and_a_failing_test_or_missing_report_shows(run_pytest):
    result, junit = run_pytest(MATRIX_TESTS)
    assert result.returncode == 1, result.stdout + result.stderr
    run = junit_read(path=junit)
    figures = by_what(reliability_figures(run=run, fuzz=FUZZ, soak=SOAK))
    cells = figures["API permission cells checked (operation × role)"]
    assert (cells.value, cells.ok) == ("21 (3 operations × 7 roles)", True)
    admin = figures["admin page cells checked (page × signed-in role)"]
    assert (admin.value, admin.ok) == ("12 (2 pages × 6 roles) (failed)", False)
    assert figures["admin URLs checked anonymous → login"].value == NOT_RUN
    assert figures["fuzz examples sent / 5xx answers"].value == "2,001 / 1"
    assert not figures["fuzz examples sent / 5xx answers"].ok
    assert figures["operations whose valid examples were mostly refused"].value == "QC officer: 0, lab staff: 2"
    assert figures["load run: 20 users, 60 s"].value == "900 requests, 15.0/s, 0 errors"
    assert figures["p95 per kind (ms)"].value == "lot read 220, signature 340"
    assert figures["consistency checks held"].value == "2 of 2"
    # No fault test in this run: records lost is not shown, whatever the load run says.
    assert figures["faults injected, each ending with verify_audit clean (passed)"].value == NOT_RUN
    assert not figures["records lost"].ok and figures["records lost"].value.startswith("not shown")
    text = figures_markdown(list(figures.values()), commit="0123456789abcdef")
    assert text.startswith("# Reliability and security figures (test run of cmlims 0123456789ab)")
    assert "| admin page cells checked (page × signed-in role) | 12 (2 pages × 6 roles) (failed) ⚠ |" in text


def test_records_lost_is_zero_only_when_every_fault_test_and_check_held(run_pytest, tmp_path):
    faults = '''
import pytest


@pytest.mark.req("REQ-PASS")
def test_fault_one():
    assert True
'''
    result, junit = run_pytest(faults)
    assert result.returncode == 0, result.stdout + result.stderr
    run = junit_read(path=junit)
    fault_run = type(run)(properties=run.properties, totals=run.totals, results=[
        type(r)(name=r.name, outcome=r.outcome, via=r.via, requirement_ids=("REL-FAULT-BROKER",), figures={})
        for r in run.results])
    lost = by_what(reliability_figures(run=fault_run, fuzz={}, soak=SOAK))["records lost"]
    assert (lost.value, lost.ok) == ("0", True)
    broken = {**SOAK, "checks": {**SOAK["checks"], "vial counts reconcile": {"ok": False}}}
    lost = by_what(reliability_figures(run=fault_run, fuzz={}, soak=broken))["records lost"]
    assert not lost.ok
    assert by_what(reliability_figures(run=fault_run, fuzz={}, soak={}))["load run (locust, closed loop)"].value \
        == NOT_RUN
    (tmp_path / "bad.json").write_text("{not json")
    assert reports_read(tmp_path / "bad.json") == {} and reports_read(tmp_path / "missing.json") == {}


@pytest.mark.django_db
def test_the_pack_writes_the_figures_beside_the_matrix(run_pytest, tmp_path):
    result, junit = run_pytest(MATRIX_TESTS)
    (tmp_path / "fuzz.json").write_text(json.dumps(FUZZ))
    out = tmp_path / "pack"
    with pytest.raises(CommandError, match="mandatory requirement"):  # the tiny register has gaps: written anyway
        call_command("validation_pack", junit=junit, out=out, register=FIXTURE_REGISTER, fuzz=tmp_path / "fuzz.json",
                     soak=tmp_path / "none.json")
    text = (out / "reliability.md").read_text()
    assert "| API permission cells checked (operation × role) | 21 (3 operations × 7 roles) |" in text
    assert f"| load run (locust, closed loop) | {NOT_RUN} ⚠ |" in text
