"""``python -m benchmarks [--scale small|medium|default] [--growth] [--results-name NAME] [--long-rounds N]
[group ...]`` (``make bench``).

Builds (or reuses) the dataset on the configured database, runs B1–B5 and B8–B10 through the harness and writes
``benchmarks/results.json`` and ``results.md`` (``results-NAME.*`` with ``--results-name``). ``--long-rounds``
runs the long cases (B9) that many rounds with no warm-up; at ``--scale default`` it is 1 unless given.
``--growth`` also runs B1, B2, B8, B10 on three datasets of ×1, ×4 and ×16 a small base, each in its own
database next to the configured one (``<name>_g1`` …, PostgreSQL).
``python -m benchmarks audit`` runs the older audited-bulk-update figure (bench_audit, throwaway database).
Exit status 1 if a benchmark is over its target.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GROWTH_SCALES = (("×1", "g1"), ("×4", "g4"), ("×16", "g16"))


def run(scale: str, groups: list[str], out: Path | None = None, results_name: str = "") -> int:
    from benchmarks import cases, dataset, harness

    dataset.ensure(scale)
    target = results_path(results_name)
    results = []
    for group in groups:
        for case in cases.GROUPS[group]():
            result = harness.run_case(case, scale)
            print(f"{result.id}: {result.median_ratio:.2f}× ({result.measured_ms:,.1f} ms vs "
                  f"{result.floor_ms:,.1f} ms; queries {result.queries_measured}/{result.queries_floor}) "
                  f"{_verdict(result)}; CPU of this process {result.extra['cpu_ratio']}×",
                  flush=True)
            results.append(result)
            if out is None:  # after every case: a run stopped in a long one (B9 at default) keeps the rest
                harness.write(results, harness.machine(), out=target)
    if out is not None:  # a growth step: the parent collects it
        out.write_text(json.dumps({r.id: [r.measured_ms, r.queries_measured] for r in results}))
        return 0
    facts = harness.machine()
    harness.write(results, facts, out=target)  # written before the growth steps, which take long: a stopped run
    if os.environ.get("BENCH_GROWTH"):         # keeps it
        harness.write(results, facts, growth_run(), out=target)
    print(target.with_suffix(".md").read_text())
    return 0 if all(r.within_target is not False for r in results) else 1


def _verdict(result) -> str:
    if result.within_target is None:
        return "reference"
    return f"target {result.target_text}: {'ok' if result.within_target else 'OVER'}"


def results_path(results_name: str | None) -> Path:
    """``results.json``, or ``results-NAME.json`` for ``--results-name NAME`` (the ``.md`` beside it)."""
    return HERE / (f"results-{results_name}.json" if results_name else "results.json")


def growth_run() -> list[dict]:
    """B1, B2, B8, B10 at ×1, ×4, ×16 of a small base, one database and one process per step."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        print("growth needs PostgreSQL (DATABASE_URL)")
        return []
    steps = []
    for factor, scale in GROWTH_SCALES:
        name = f"{db['NAME']}_{scale}"
        _create_database(db, name)
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}"
        out = HERE / f".growth-{scale}.json"
        subprocess.run([sys.executable, "-m", "benchmarks", "--scale", scale, "--growth-step", str(out),
                        "lots", "trace", "home"], check=True,
                       env={**os.environ, "DATABASE_URL": url, "BENCH_GROWTH": ""})
        figures = json.loads(out.read_text())
        out.unlink()
        steps.append({"factor": factor, "scale": scale, "ms": {k: v[0] for k, v in figures.items()},
                      "queries": {k: v[1] for k, v in figures.items()}})
    return steps


def _create_database(db: dict, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname="postgres",
                         autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def build_parser(groups: list[str], scales: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--scale", default=os.environ.get("SCALE") or "default", choices=sorted(scales))
    parser.add_argument("--growth", action="store_true", help="also B1, B2, B8, B10 at ×1, ×4, ×16 of a small base")
    parser.add_argument("--growth-step", type=Path, help=argparse.SUPPRESS)
    # No string default: argparse runs a string default through ``type``, and "" is not a valid name, so every
    # run without --results-name (``make bench``) stopped at the parser.
    parser.add_argument("--results-name", default=None, type=_results_name,
                        help="write results-NAME.json/.md instead of results.json/.md")
    parser.add_argument("--long-rounds", type=int, default=None,
                        help="rounds of the long cases (B9), with no warm-up (default scale: 1)")
    parser.add_argument("groups", nargs="*", help=f"any of: {', '.join(groups)}, audit")
    return parser


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from benchmarks import cases, dataset, harness

    parser = build_parser(list(cases.GROUPS), list(dataset.SCALES))
    args = parser.parse_args(argv)
    if args.groups == ["audit"]:
        return importlib.import_module("benchmarks.bench_audit").main()
    unknown = sorted(set(args.groups) - set(cases.GROUPS))
    if unknown:
        parser.error(f"unknown group(s): {', '.join(unknown)}")
    if args.growth:
        os.environ["BENCH_GROWTH"] = "1"
    long_rounds = args.long_rounds if args.long_rounds is not None else (1 if args.scale == "default" else None)
    if long_rounds is not None:
        if long_rounds < 1:
            parser.error("--long-rounds: at least 1")
        harness.LONG_ROUNDS = long_rounds
    return run(args.scale, args.groups or list(cases.GROUPS), args.growth_step, args.results_name or "")


def _results_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", text):
        raise argparse.ArgumentTypeError("lower-case letters, digits and hyphens, e.g. default")
    return text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
