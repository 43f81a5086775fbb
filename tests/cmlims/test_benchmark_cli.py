"""The benchmark command line (``python -m benchmarks``): which results file a run writes."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import HERE, build_parser, results_path

GROUPS, SCALES = ["labels", "coa"], ["small", "default"]


def test_a_run_without_a_results_name_writes_results_json():
    # argparse runs a string default through the option's type: a default of "" failed the name check, so
    # `make bench` (no --results-name) stopped at the parser.
    args = build_parser(GROUPS, SCALES).parse_args(["--scale", "small", "labels"])
    assert args.results_name is None
    assert results_path(args.results_name) == HERE / "results.json"


def test_a_results_name_writes_its_own_file_and_a_bad_one_is_refused(capsys):
    args = build_parser(GROUPS, SCALES).parse_args(["--results-name", "h-perfdocs", "coa"])
    assert results_path(args.results_name) == HERE / "results-h-perfdocs.json"
    with pytest.raises(SystemExit):
        build_parser(GROUPS, SCALES).parse_args(["--results-name", "Bad Name"])
    assert "--results-name: lower-case letters, digits and hyphens" in capsys.readouterr().err


@pytest.mark.req("FEAT-PERF-BENCH-REPORT")
def test_a_case_is_within_target_only_when_it_meets_its_absolute_limits_too():
    """B8's p50 < 20 ms, B6's 15 s and B4's labels per second are part of their targets: a case whose ratio is
    within the limit but whose time (or rate) is not is reported NO, not yes."""
    import time

    from benchmarks.harness import Case, run_case

    def pause() -> None:
        time.sleep(0.004)

    def case(**limits) -> Case:
        return Case("T", "both sides the same", pause, pause, 50.0, items=10, rounds=3, **limits)

    assert run_case(case(), "tiny", count_queries=False).within_target
    assert run_case(case(max_ms=10_000, min_per_second=1), "tiny", count_queries=False).within_target
    assert not run_case(case(max_ms=1.0), "tiny", count_queries=False).within_target
    assert not run_case(case(min_per_second=1e9), "tiny", count_queries=False).within_target


@pytest.mark.req("FEAT-PERF-BENCH-REPORT")
def test_a_reference_case_is_reported_and_judged_against_nothing():
    """R1/R2 (the API's and the admin's fixed cost) have no target: their row says "reference" and "—", and
    they never make a run fail."""
    import time

    from benchmarks.harness import Case, markdown, run_case

    def pause() -> None:
        time.sleep(0.002)

    result = run_case(Case("R9", "a reference", pause, pause, None, rounds=2), "tiny", count_queries=False)
    assert result.within_target is None and result.target_text == "reference"
    row = next(line for line in markdown([result], {}).splitlines() if line.startswith("| R9 "))
    assert row.endswith("| reference | — |")
