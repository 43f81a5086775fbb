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
