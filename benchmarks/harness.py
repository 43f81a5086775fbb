"""The one timing harness: a measured path against its floor, alternated over rounds after a warm-up, in one
process (both sides see the same machine load), then ``results.json`` and a markdown table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
WARMUP = 1
# The long cases (those that set ``Case.rounds``, B9) at a large scale: this many rounds and no warm-up, the
# query counts taken in the first timed round (``--long-rounds``; None: the case's own rounds after a warm-up).
LONG_ROUNDS: int | None = int(os.environ["BENCH_LONG_ROUNDS"]) if os.environ.get("BENCH_LONG_ROUNDS") else None


@dataclass
class Case:
    id: str
    title: str
    measured: Callable[[], object]
    floor: Callable[[], object]
    target: float | None  # the highest acceptable median ratio measured / floor; None: a reference figure
    target_text: str = ""
    items: int = 0  # things one call handles (labels, entries), for a per-second figure
    note: str = ""
    rounds: int = 0  # 0: ROUNDS; fewer for the long ones (B9)
    before: Callable[[], object] | None = None  # puts the data in the state the case measures, not timed
    # Absolute limits some targets add to the ratio (B8's p50 < 20 ms, B6's 15 s, B4's labels per second):
    # the case is within target only when it meets those as well.
    max_ms: float | None = None
    min_per_second: float | None = None


@dataclass
class Result:
    id: str
    title: str
    median_ratio: float
    spread: list[float]  # lowest and highest ratio over the rounds
    measured_ms: float
    floor_ms: float
    queries_measured: int | None
    queries_floor: int | None
    target: float | None
    target_text: str
    within_target: bool | None  # None: a reference case, judged against nothing
    per_second: float | None
    scale: str
    note: str = ""
    extra: dict = field(default_factory=dict)
    rounds: int = 0
    warmup: int = WARMUP


def _counted(fn: Callable[[], object]) -> tuple[float, int | None]:
    """(seconds, queries) of one call; the count costs a list append per query."""
    try:
        from django.db import connection
    except ImportError:
        return _timed(fn), None
    seen: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, *args: seen.append(sql) or execute(sql, *args)):
        seconds = _timed(fn)
    return seconds, len(seen)


def _queries(fn: Callable[[], object]) -> int | None:
    return _counted(fn)[1]


def _timed(fn: Callable[[], object]) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    _CPU.append(time.process_time() - cpu)
    return time.perf_counter() - start


# This process's CPU seconds of each timed call (``_timed``), beside the wall time the ratios use: on the shared
# machine the CPU ratio moves less with other load. It misses work done in other processes (the database server,
# B7's worker), so it is reported, never judged.
_CPU: list[float] = []


def run_case(case: Case, scale: str, *, count_queries: bool = True) -> Result:
    long = bool(case.rounds) and LONG_ROUNDS is not None
    warmup, rounds = (0, LONG_ROUNDS) if long else (WARMUP, case.rounds or ROUNDS)
    if case.before is not None:
        case.before()
    for _ in range(warmup):
        case.measured()
        case.floor()
    measured, floor = [], []
    cpu: dict[str, list[float]] = {"measured": [], "floor": []}
    counts: dict[str, int | None] = {}
    for round_no in range(rounds):
        # Alternate which side goes first so neither always runs on a warmer cache.
        pair = (("measured", case.measured, measured), ("floor", case.floor, floor))
        for side, fn, times in (pair if round_no % 2 == 0 else pair[::-1]):
            if long and count_queries and round_no == 0:  # another call only to count would double a long run
                seconds, counts[side] = _counted(fn)
            else:
                seconds = _timed(fn)
            times.append(seconds)
            cpu[side].append(_CPU[-1])
    if count_queries and not long:
        counts = {"measured": _queries(case.measured), "floor": _queries(case.floor)}
    ratios = [m / f for m, f in zip(measured, floor, strict=True)]
    median_m, median_f = statistics.median(measured), statistics.median(floor)
    ratio = median_m / median_f
    cpu_m, cpu_f = statistics.median(cpu["measured"]), statistics.median(cpu["floor"])
    extra = {"cpu_measured_ms": round(cpu_m * 1000, 2), "cpu_floor_ms": round(cpu_f * 1000, 2),
             "cpu_ratio": round(cpu_m / cpu_f, 3) if cpu_f else None}
    return Result(
        id=case.id, title=case.title, median_ratio=round(ratio, 3),
        spread=[round(min(ratios), 3), round(max(ratios), 3)],
        measured_ms=round(median_m * 1000, 2), floor_ms=round(median_f * 1000, 2),
        queries_measured=counts.get("measured"), queries_floor=counts.get("floor"),
        target=case.target,
        target_text=case.target_text or (f"≤ {case.target}×" if case.target is not None else "reference"),
        within_target=_within_target(case, ratio, median_m),
        per_second=round(case.items / median_m, 1) if case.items else None,
        scale=scale, note=_rounds_note(case.note, rounds, warmup) if long else case.note,
        rounds=rounds, warmup=warmup, extra=extra,
    )


def _within_target(case: Case, ratio: float, median_s: float) -> bool | None:
    if case.target is None:
        return None
    if ratio > case.target:
        return False
    if case.max_ms is not None and median_s * 1000 > case.max_ms:
        return False
    return case.min_per_second is None or (case.items / median_s) >= case.min_per_second


def _rounds_note(note: str, rounds: int, warmup: int) -> str:
    said = f"{rounds} round{'s' if rounds != 1 else ''}, {warmup or 'no'} warm-up"
    return f"{note}; {said}" if note else said


def machine() -> dict:
    facts = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        from django.db import connection

        facts["database"] = connection.vendor
        if connection.vendor == "postgresql":
            facts["server_version"] = connection.cursor().connection.info.server_version
        facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except Exception:  # noqa: BLE001 (facts only; never fail a run for them)
        pass
    return facts


def markdown(results: list[Result], facts: dict, growth: list[dict] | None = None) -> str:
    lines = [f"Scale: {results[0].scale if results else '-'}; {facts.get('database')} on {facts.get('cpus')} CPUs, "
             f"load {facts.get('load_average')}; {ROUNDS} rounds after {WARMUP} warm-up.", "",
             "| id | measured | median ratio (spread) | measured ms | floor ms | queries (measured/floor) "
             "| target | ok |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rate = f"; {r.per_second:,.0f}/s" if r.per_second else ""
        if r.rounds and (r.rounds, r.warmup) != (ROUNDS, WARMUP):
            rate += f" ({_rounds_note('', r.rounds, r.warmup)})"
        lines.append(f"| {r.id} | {r.title}{rate} | {r.median_ratio:.2f}× ({r.spread[0]:.2f}–{r.spread[1]:.2f}) | "
                     f"{r.measured_ms:,.1f} | {r.floor_ms:,.1f} | {r.queries_measured}/{r.queries_floor} | "
                     f"{r.target_text} | {_ok_text(r.within_target)} |")
    cpu = [f"{r.id} {r.extra['cpu_ratio']:.2f}× ({r.extra['cpu_measured_ms']:,.1f} / {r.extra['cpu_floor_ms']:,.1f} ms)"
           for r in results if r.extra.get("cpu_ratio")]
    if cpu:
        lines += ["", "CPU time of the benchmark process, median (measured / floor; not the database's or a "
                  "worker's): " + ", ".join(cpu) + "."]
    notes = [f"- {r.id}: {r.note}" for r in results if r.note]
    if notes:
        lines += ["", *notes]
    if growth:
        lines += ["", "Growth (median ms of the measured side; ratio to ×1):", "",
                  "| id | " + " | ".join(g["factor"] for g in growth) + " |",
                  "|---|" + "---|" * len(growth)]
        for bench_id in growth[0]["ms"]:
            base = growth[0]["ms"][bench_id]
            cells = [f"{g['ms'][bench_id]:,.1f} ms ({g['ms'][bench_id] / base:.2f}×, {g['queries'][bench_id]} q)"
                     for g in growth]
            lines.append(f"| {bench_id} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ok_text(within: bool | None) -> str:
    return "—" if within is None else "yes" if within else "NO"


def write(results: list[Result], facts: dict, growth: list[dict] | None = None,
          out: Path = HERE / "results.json") -> None:
    out.write_text(json.dumps({"machine": facts, "results": [asdict(r) for r in results], "growth": growth or []},
                              indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(results, facts, growth))
