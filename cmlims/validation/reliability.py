"""Reliability and security figures of one test run (issue 18's README table), read from what the run wrote:

- the JUnit report: the figures the matrix tests measured while they passed (``record_property("figure.…")``),
  the hostile-input cases and the fault tests (``REL-FAULT-*``) with their outcomes;
- ``reports/fuzz.json``: the schemathesis run per role (operations, examples, server errors, mostly refused);
- ``reports/soak/summary.json``: the load run (requests, per second, p95 per kind, errors, consistency checks).

A figure the run did not produce says so ("not in this run") instead of a number: nothing here is typed in.
Records lost is 0 only when every fault test passed and every consistency check of the load run held.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cmlims.validation.matrix import TestResult, TestRun

HOSTILE_MODULE = "tests.reliability.test_hostile_input"
FAULT_PREFIX = "REL-FAULT-"
NOT_RUN = "not in this run"


@dataclass(frozen=True)
class Figure:
    what: str
    value: str
    source: str
    ok: bool = True  # False: a failing test or check behind it, or a target missed


def _figure(run: TestRun, name: str) -> tuple[str, TestResult] | None:
    """The value of ``figure.<name>`` and the test that recorded it (the last one, if several did)."""
    found = [(result.figures[name], result) for result in run.results if name in result.figures]
    return found[-1] if found else None


def _value(run: TestRun, name: str) -> str:
    found = _figure(run, name)
    return found[0] if found else "?"


def _counted(run: TestRun, name: str, what: str, describe) -> Figure:
    found = _figure(run, name)
    if found is None:
        return Figure(what, NOT_RUN, "JUnit report", ok=False)
    value, result = found
    passed = result.outcome == "passed"
    return Figure(what, describe(value) + ("" if passed else f" ({result.outcome})"), result.name, ok=passed)


def _outcomes(results: Sequence[TestResult]) -> tuple[int, int]:
    return sum(r.outcome == "passed" for r in results), len(results)


def _fuzz_figures(fuzz: dict) -> list[Figure]:
    if not fuzz:
        return [Figure("API fuzzing (schemathesis)", NOT_RUN, "reports/fuzz.json", ok=False)]
    roles = sorted(fuzz)
    operations = sum(fuzz[r].get("operations", 0) for r in roles)
    examples = sum(fuzz[r].get("examples", 0) for r in roles)
    errors = sum(fuzz[r].get("server_errors", 0) for r in roles)
    refused = ", ".join(f"{r}: {len(fuzz[r].get('mostly_rejected', []))}" for r in roles)
    per_role = ", ".join(f"{r}: {fuzz[r].get('operations', 0)}" for r in roles)
    return [
        Figure("API operations fuzzed (operation runs over the roles)", f"{operations} ({per_role})",
               "reports/fuzz.json"),
        Figure("fuzz examples sent / 5xx answers", f"{examples:,} / {errors}", "reports/fuzz.json", ok=errors == 0),
        Figure("operations whose valid examples were mostly refused", refused, "reports/fuzz.json"),
    ]


def _soak_figures(soak: dict) -> list[Figure]:
    if not soak:
        return [Figure("load run (locust, closed loop)", NOT_RUN, "reports/soak/summary.json", ok=False)]
    kinds = soak.get("kinds", {})
    p95 = ", ".join(f"{name} {row.get('p95_ms')}" for name, row in kinds.items())
    checks = soak.get("checks", {})
    held = sum(bool(c.get("ok")) for c in checks.values())
    where = f"reports/soak/summary.json (cmlims {soak.get('commit', '?')})"
    return [
        Figure(f"load run: {soak.get('users')} users, {soak.get('duration_s')} s",
               f"{soak.get('requests', 0):,} requests, {soak.get('rps')}/s, {soak.get('errors', 0)} errors",
               where, ok=not soak.get("errors")),
        Figure("p95 per kind (ms)", p95 or "—", where, ok=not soak.get("advisories")),
        Figure("label jobs finished / requested", f"{soak.get('jobs_finished', 0)} / {soak.get('jobs_requested', 0)}",
               where, ok=soak.get("jobs_finished") == soak.get("jobs_requested")),
        Figure("consistency checks held", f"{held} of {len(checks)}", where, ok=bool(checks) and held == len(checks)),
    ]


def reliability_figures(*, run: TestRun, fuzz: dict, soak: dict) -> list[Figure]:
    """The README table's rows for this run."""
    hostile = [r for r in run.results if r.name.startswith(HOSTILE_MODULE + "::")]
    faults = [r for r in run.results if any(i.startswith(FAULT_PREFIX) for i in r.requirement_ids)]
    hostile_passed, hostile_all = _outcomes(hostile)
    faults_passed, faults_all = _outcomes(faults)
    figures = [
        _counted(run, "api_permission_cells", "API permission cells checked (operation × role)",
                 lambda v: f"{v} ({_value(run, 'api_operations')} operations × {_value(run, 'api_roles')} roles)"),
        _counted(run, "admin_anonymous_urls", "admin URLs checked anonymous → login", str),
        _counted(run, "admin_page_cells", "admin page cells checked (page × signed-in role)",
                 lambda v: f"{v} ({_value(run, 'admin_pages')} pages × {_value(run, 'admin_roles')} roles)"),
        _counted(run, "admin_action_lists", "admin action menus compared (list × role)", str),
        *_fuzz_figures(fuzz),
        Figure("hostile-input cases passed (4xx naming the field, nothing written)",
               f"{hostile_passed} of {hostile_all}" if hostile else NOT_RUN, HOSTILE_MODULE,
               ok=bool(hostile) and hostile_passed == hostile_all),
        Figure("faults injected, each ending with verify_audit clean (passed)",
               f"{faults_passed} of {faults_all}" if faults else NOT_RUN, f"tests marked {FAULT_PREFIX}*",
               ok=bool(faults) and faults_passed == faults_all),
        *_soak_figures(soak),
    ]
    soak_checks = (soak or {}).get("checks", {})
    lost_shown = (bool(faults) and faults_passed == faults_all and bool(soak_checks)
                  and all(c.get("ok") for c in soak_checks.values()))
    figures.append(Figure("records lost", "0" if lost_shown else "not shown (a fault test or a check failed, or "
                                                                 "did not run)",
                          "fault tests and the load run's checks", ok=lost_shown))
    return figures


def reports_read(path: Path) -> dict:
    """A JSON report, or {} when the run did not write it (or wrote something unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def figures_markdown(figures: Sequence[Figure], *, commit: str) -> str:
    lines = [f"# Reliability and security figures (test run of cmlims {commit[:12]})", "",
             "| what | figure | from |", "|---|---|---|"]
    lines += [f"| {f.what} | {f.value}{'' if f.ok else ' ⚠'} | {f.source} |" for f in figures]
    return "\n".join(lines) + "\n"
