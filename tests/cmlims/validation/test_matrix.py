"""The traceability matrix on the fixture register, built from a real run's JUnit report."""

import csv
from pathlib import Path

from cmlims.validation.facts import git_commit
from cmlims.validation.matrix import junit_read, main, matrix_build, report_is_fresh
from cmlims.validation.register import register_load

FIXTURE_REGISTER = Path(__file__).with_name("fixture_register.yaml")  # the tiny register these tests read


def _matrix(junit):
    return matrix_build(register=register_load(path=FIXTURE_REGISTER), run=junit_read(path=junit))


def test_each_requirement_is_judged_by_its_tests(sample_run):
    rows = {row.requirement.id: row for row in _matrix(sample_run).rows}
    assert (rows["REQ-PASS"].status, rows["REQ-PASS"].problem) == ("covered", "")
    assert rows["REQ-FAIL"].status == "failing"  # one passing test does not outweigh a failing one
    assert rows["REQ-FAIL"].problem == "1 failing test(s)"
    assert (rows["REQ-NONE"].status, rows["REQ-NONE"].problem) == ("untested", "no passing test")
    assert rows["REQ-HIGH-OK"].status == "covered"
    assert rows["REQ-HIGH-SERVICE"].status == "insufficient"
    assert rows["REQ-HIGH-SERVICE"].problem == "high risk: needs a passing test through the API or a browser"
    assert rows["REQ-SKIPPED"].status == "untested"  # a skipped test proves nothing
    assert sorted(t.name.split("::")[-1] for t in rows["REQ-PASS"].tests) == [
        "test_declares_how_it_reaches_the_system", "test_passes"]


def test_gaps_come_first_mandatory_before_optional(sample_run):
    matrix = _matrix(sample_run)
    assert [row.requirement.id for row in matrix.rows] == [
        "REQ-FAIL", "REQ-NONE", "REQ-HIGH-SERVICE", "REQ-SKIPPED", "REQ-PASS", "REQ-HIGH-OK"]
    assert matrix.summary_line() == "requirements covered: 2 of 6"
    assert [row.requirement.id for row in matrix.mandatory_uncovered] == ["REQ-FAIL", "REQ-NONE", "REQ-HIGH-SERVICE"]


def test_a_high_risk_requirement_needs_two_passing_tests(run_pytest):
    result, junit = run_pytest('''
        import pytest

        @pytest.mark.req("REQ-HIGH-OK", via="api")
        def test_only_one():
            pass
    ''')
    assert result.returncode == 0, result.stdout
    row = next(row for row in _matrix(junit).rows if row.requirement.id == "REQ-HIGH-OK")
    assert (row.status, row.problem) == ("insufficient", "high risk: needs 2 passing tests, has 1")


def test_html_and_csv_show_gaps_in_red_with_the_run_facts(sample_run, tmp_path, capsys):
    out = tmp_path / "validation"
    code = main(["--junit", str(sample_run), "--out", str(out), "--register", str(FIXTURE_REGISTER)])
    printed = capsys.readouterr().out
    assert code == 1  # mandatory requirements without a passing test
    assert printed.splitlines()[0] == "requirements covered: 2 of 6"
    assert "NOT COVERED REQ-NONE: no passing test" in printed
    assert "REQ-SKIPPED" not in printed  # optional: shown in the matrix, not a failure
    page = (out / "traceability.html").read_text()
    assert page.index("REQ-FAIL") < page.index("REQ-PASS")
    assert '<tr class="gap"><td><b>REQ-NONE</b>' in page and '<tr class="ok"><td><b>REQ-PASS</b>' in page
    assert "tr.gap td.status { color: #b00000" in page  # gaps in red
    commit = junit_read(path=sample_run).properties["commit"]
    assert commit in page and "django" in page and "python" in page and "database_vendor" in page
    with (out / "traceability.csv").open() as handle:
        lines = list(csv.reader(handle))
    assert lines[0][0] == "# requirements covered: 2 of 6" and f"commit={commit}" in lines[0]
    header, *rows = lines[1:]
    records = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert records["REQ-FAIL"]["status"] == "failing"
    assert (records["REQ-FAIL"]["passing"], records["REQ-FAIL"]["failing"]) == ("1", "1")
    assert "test_sample::test_passes_through_the_api = passed [api]" in records["REQ-HIGH-OK"]["tests"]
    assert records["REQ-NONE"]["tests"] == ""


def test_exit_status_is_zero_once_every_mandatory_requirement_is_covered(sample_run, tmp_path, capsys):
    register = tmp_path / "register.yaml"
    lines = FIXTURE_REGISTER.read_text().splitlines()
    register.write_text("\n".join(line for line in lines if "REQ-FAIL" not in line and "REQ-NONE" not in line
                                  and "REQ-HIGH-SERVICE" not in line))
    code = main(["--junit", str(sample_run), "--out", str(tmp_path / "out"), "--register", str(register)])
    assert code == 0  # the uncovered REQ-SKIPPED is optional
    assert capsys.readouterr().out.splitlines()[0] == "requirements covered: 2 of 3"


def test_a_report_is_fresh_only_for_the_clean_commit_that_wrote_it(sample_run, tmp_path):
    commit = junit_read(path=sample_run).properties["commit"]
    assert report_is_fresh(junit=sample_run, commit=commit) is not commit.endswith("-dirty")
    assert report_is_fresh(junit=sample_run, commit="0" * 40) is False
    assert report_is_fresh(junit=sample_run, commit=commit.removesuffix("-dirty") + "-dirty") is False
    assert report_is_fresh(junit=tmp_path / "missing.xml", commit=git_commit()) is False
