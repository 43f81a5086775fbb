"""The traceability matrix: requirement -> tests -> result, built from the JUnit XML of a test run.

Pure Python (no Django), so it can be built from any saved report. A requirement is covered when it has
a passing test and no failing one; a high-risk requirement needs at least two passing tests, one of them
through the API or a browser (``via`` of the test, see ``pytest_plugin``). Skipped tests prove nothing.

    python -m cmlims.validation.matrix --junit reports/junit.xml --out reports/validation
    python -m cmlims.validation.matrix --fresh reports/junit.xml   # exit 0 if it is this commit's report
"""

from __future__ import annotations

import argparse
import csv
import html
import sys
import xml.etree.ElementTree as ET  # noqa: S405 - our own test report, not untrusted input
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cmlims.validation.facts import git_commit
from cmlims.validation.register import DEFAULT_REGISTER, Requirement, register_load

HTTP_VIAS = ("api", "browser")
# The run facts the plugin records; other plugins add testsuite properties of their own (hypothesis statistics).
RUN_FACTS = ("commit", "run_started", "python", "django", "database_vendor", "database_version")
HIGH_RISK_MIN_PASSING = 2
FIGURE_PREFIX = "figure."


@dataclass(frozen=True)
class TestResult:
    name: str  # tests.qc.test_signoff::test_release_...
    outcome: str  # passed | failed | skipped
    via: str  # api | browser | service
    requirement_ids: tuple[str, ...]
    # what the test measured while it passed (``record_property("figure.<name>", value)``), e.g. cells checked
    figures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TestRun:
    properties: Mapping[str, str]  # RUN_FACTS, plus whatever other plugins recorded

    @property
    def facts(self) -> dict[str, str]:
        return {key: self.properties[key] for key in RUN_FACTS if key in self.properties}
    results: Sequence[TestResult]
    totals: Mapping[str, int]  # tests, failures, errors, skipped


@dataclass(frozen=True)
class MatrixRow:
    requirement: Requirement
    tests: Sequence[TestResult]
    status: str  # covered | failing | untested | insufficient
    problem: str = ""

    @property
    def covered(self) -> bool:
        return self.status == "covered"


@dataclass(frozen=True)
class Matrix:
    run: TestRun
    rows: Sequence[MatrixRow]  # not covered first (mandatory before optional), then covered
    unknown_ids: Sequence[str] = field(default_factory=tuple)  # tagged in the report, absent from the register

    @property
    def covered_count(self) -> int:
        return sum(row.covered for row in self.rows)

    @property
    def mandatory_uncovered(self) -> list[MatrixRow]:
        return [row for row in self.rows if row.requirement.mandatory and not row.covered]

    def summary_line(self) -> str:
        return f"requirements covered: {self.covered_count} of {len(self.rows)}"


def _outcome(testcase: ET.Element) -> str:
    if testcase.find("failure") is not None or testcase.find("error") is not None:
        return "failed"
    if testcase.find("skipped") is not None:
        return "skipped"
    return "passed"


def junit_read(*, path: Path) -> TestRun:
    """The run's facts and every test case of a pytest JUnit XML report."""
    root = ET.parse(path).getroot()  # noqa: S314
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    properties: dict[str, str] = {}
    results: list[TestResult] = []
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in suites:
        for prop in suite.findall("properties/property"):
            properties[prop.get("name", "")] = prop.get("value", "")
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        for case in suite.iter("testcase"):
            props = {p.get("name"): p.get("value", "") for p in case.findall("properties/property")}
            results.append(TestResult(
                name=f"{case.get('classname', '')}::{case.get('name', '')}",
                outcome=_outcome(case),
                via=props.get("via", "service"),
                requirement_ids=tuple(props.get("req", "").split()),
                figures={name.removeprefix(FIGURE_PREFIX): value for name, value in props.items()
                         if name and name.startswith(FIGURE_PREFIX)},
            ))
    return TestRun(properties=properties, results=results, totals=totals)


def _judge(requirement: Requirement, tests: Sequence[TestResult]) -> tuple[str, str]:
    passing = [test for test in tests if test.outcome == "passed"]
    failing = [test for test in tests if test.outcome == "failed"]
    if failing:
        return "failing", f"{len(failing)} failing test(s)"
    if not passing:
        return "untested", "no passing test"
    if requirement.risk == "high":
        if len(passing) < HIGH_RISK_MIN_PASSING:
            return "insufficient", f"high risk: needs {HIGH_RISK_MIN_PASSING} passing tests, has {len(passing)}"
        if not any(test.via in HTTP_VIAS for test in passing):
            return "insufficient", "high risk: needs a passing test through the API or a browser"
    return "covered", ""


def matrix_build(*, register: Mapping[str, Requirement], run: TestRun) -> Matrix:
    by_requirement: dict[str, list[TestResult]] = {req_id: [] for req_id in register}
    unknown: set[str] = set()
    for result in run.results:
        for req_id in result.requirement_ids:
            if req_id in by_requirement:
                by_requirement[req_id].append(result)
            else:
                unknown.add(req_id)
    rows = []
    for req_id, requirement in register.items():
        status, problem = _judge(requirement, by_requirement[req_id])
        rows.append(MatrixRow(requirement=requirement, tests=by_requirement[req_id], status=status, problem=problem))
    order = {req_id: index for index, req_id in enumerate(register)}
    # Gaps first, mandatory gaps before optional ones; register order inside each group.
    rows.sort(key=lambda row: (row.covered, not row.requirement.mandatory, order[row.requirement.id]))
    return Matrix(run=run, rows=rows, unknown_ids=tuple(sorted(unknown)))


def _tests_cell(row: MatrixRow) -> str:
    return " | ".join(f"{test.name} = {test.outcome} [{test.via}]" for test in row.tests)


CSV_HEADER = ("requirement", "statement", "source", "risk", "gamp_category", "mandatory", "status", "problem",
              "passing", "failing", "skipped", "tests")


def matrix_write_csv(*, matrix: Matrix, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("# " + matrix.summary_line(), *(f"{k}={v}" for k, v in matrix.run.facts.items())))
        writer.writerow(CSV_HEADER)
        for row in matrix.rows:
            req = row.requirement
            counts = [sum(test.outcome == outcome for test in row.tests) for outcome in ("passed", "failed", "skipped")]
            writer.writerow((req.id, req.statement, req.source, req.risk, req.gamp_category,
                             "yes" if req.mandatory else "no", row.status, row.problem, *counts, _tests_cell(row)))


_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #eee; }
tr.gap td { background: #fbe3e3; }
tr.gap td.status { color: #b00000; font-weight: bold; }
td.status { color: #176117; font-weight: bold; }
.passed { color: #176117; } .failed { color: #b00000; font-weight: bold; } .skipped { color: #777; }
"""


def matrix_write_html(*, matrix: Matrix, path: Path) -> None:
    e = html.escape
    facts = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in matrix.run.facts.items())
    totals = ", ".join(f"{k}: {v}" for k, v in matrix.run.totals.items())
    rows = []
    for row in matrix.rows:
        req = row.requirement
        tests = "<br>".join(
            f'<span class="{e(test.outcome)}">{e(test.outcome)}</span> [{e(test.via)}] <code>{e(test.name)}</code>'
            for test in row.tests
        ) or "<em>no test</em>"
        status = e(row.status) + (f"<br>{e(row.problem)}" if row.problem else "")
        rows.append(
            f'<tr class="{"ok" if row.covered else "gap"}"><td><b>{e(req.id)}</b></td><td>{e(req.statement)}'
            f"<br><small>{e(req.source)}</small></td><td>{e(req.risk)} (GAMP {e(str(req.gamp_category))})</td>"
            f'<td>{"yes" if req.mandatory else "no"}</td><td class="status">{status}</td><td>{tests}</td></tr>'
        )
    unknown = (f"<p>Ids tagged in the report but not in the register: {e(', '.join(matrix.unknown_ids))}</p>"
               if matrix.unknown_ids else "")
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>cmlims traceability matrix</title>"
        f"<style>{_STYLE}</style></head><body><h1>cmlims traceability matrix</h1>"
        f"<p><b>{e(matrix.summary_line())}</b>; mandatory without a passing test: "
        f"{len(matrix.mandatory_uncovered)}. Test run: {e(totals)}.</p>{unknown}"
        f"<table>{facts}</table><h2>Requirement → tests → result</h2>"
        "<table><tr><th>requirement</th><th>statement</th><th>risk</th><th>mandatory</th><th>status</th>"
        f"<th>tests (result [via])</th></tr>{''.join(rows)}</table></body></html>",
        encoding="utf-8",
    )


def matrix_write(*, matrix: Matrix, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = out_dir / "traceability.html", out_dir / "traceability.csv"
    matrix_write_html(matrix=matrix, path=html_path)
    matrix_write_csv(matrix=matrix, path=csv_path)
    return html_path, csv_path


def matrix_report_lines(matrix: Matrix) -> list[str]:
    """What `make validation` prints: the coverage line and every mandatory gap."""
    lines = [matrix.summary_line()]
    lines += [f"  NOT COVERED {row.requirement.id}: {row.problem}" for row in matrix.mandatory_uncovered]
    if matrix.unknown_ids:
        lines.append(f"  ids in the report but not in the register: {', '.join(matrix.unknown_ids)}")
    return lines


def report_is_fresh(*, junit: Path, commit: str) -> bool:
    """True when the report exists and was written by a run of this (clean) commit."""
    if not junit.exists() or commit.endswith("-dirty") or commit == "unknown":
        return False
    try:
        return junit_read(path=junit).properties.get("commit") == commit
    except ET.ParseError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--junit", type=Path, default=Path("reports/junit.xml"))
    parser.add_argument("--out", type=Path, default=Path("reports/validation"))
    parser.add_argument("--register", type=Path, default=DEFAULT_REGISTER)
    parser.add_argument("--fresh", type=Path, metavar="JUNIT", help="only check the report is this commit's")
    args = parser.parse_args(argv)
    if args.fresh:
        return 0 if report_is_fresh(junit=args.fresh, commit=git_commit()) else 1
    matrix = matrix_build(register=register_load(path=args.register), run=junit_read(path=args.junit))
    html_path, csv_path = matrix_write(matrix=matrix, out_dir=args.out)
    print("\n".join(matrix_report_lines(matrix)))
    print(f"matrix: {html_path} {csv_path}")
    return 1 if matrix.mandatory_uncovered else 0


if __name__ == "__main__":
    sys.exit(main())
