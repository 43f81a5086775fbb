"""Cold chain: reading a temperature logger's CSV and measuring the time outside the transport range.

How time outside the range is counted (rule 6)
- A sample is *outside* when its temperature is strictly below the range's low limit or strictly
  above its high limit; a sample exactly at a limit is inside.
- The log is cut into segments between consecutive samples. A segment counts in full when either
  of its two samples is outside, and not at all when both are inside. The logger cannot tell when
  between two samples the temperature crossed the limit, so the whole segment is assumed outside
  (worst case, as a GMP deviation assessment assumes) — never less than the logger could prove.
- The excursion time is the sum of those segments. It is an excursion when that sum is *longer*
  than the allowed minutes: exactly the allowed minutes is not an excursion.
  With 5-minute samples, 2-8 °C and 30 allowed minutes: 5 consecutive samples above 8 °C make
  6 counted segments = 30 min (no excursion); 6 consecutive samples above make 35 min (excursion).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import pairwise

from cmlims.exceptions import InvalidInput

HEADER = ["timestamp", "temperature_c"]
ABSOLUTE_ZERO_C = Decimal("-273.15")
HIGHEST_PLAUSIBLE_C = Decimal("150")
MAX_DECIMALS = 3  # what a reading stores; a logger reports 1-2
MAX_SAMPLES = 100_000  # a one-minute logger over 69 days; more is not one shipment's trip


@dataclass(frozen=True)
class Reading:
    at: dt.datetime  # aware, UTC
    temperature_c: Decimal


@dataclass(frozen=True)
class Episode:
    start: dt.datetime
    end: dt.datetime

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class ExcursionSummary:
    low_c: Decimal | None
    high_c: Decimal | None
    allowed: dt.timedelta
    outside: dt.timedelta
    episodes: list[Episode] = field(default_factory=list)
    min_c: Decimal | None = None
    max_c: Decimal | None = None
    samples: int = 0

    @property
    def is_excursion(self) -> bool:
        return self.outside > self.allowed

    @property
    def minutes_outside(self) -> Decimal:
        return (Decimal(self.outside.total_seconds()) / 60).quantize(Decimal("0.01"))


def is_outside(temperature_c: Decimal, low_c: Decimal | None, high_c: Decimal | None) -> bool:
    return (low_c is not None and temperature_c < low_c) or (high_c is not None and temperature_c > high_c)


def excursion_compute(
    readings: list[Reading], *, low_c: Decimal | None, high_c: Decimal | None, allowed_minutes: int
) -> ExcursionSummary:
    """Time outside [low_c, high_c] summed over segments between consecutive samples (see module doc)."""
    ordered = sorted(readings, key=lambda r: r.at)
    outside = dt.timedelta(0)
    episodes: list[Episode] = []
    for first, second in pairwise(ordered):
        if not (is_outside(first.temperature_c, low_c, high_c) or is_outside(second.temperature_c, low_c, high_c)):
            continue
        outside += second.at - first.at
        if episodes and episodes[-1].end == first.at:
            episodes[-1] = Episode(episodes[-1].start, second.at)  # one continuous episode
        else:
            episodes.append(Episode(first.at, second.at))
    temperatures = [r.temperature_c for r in ordered]
    return ExcursionSummary(
        low_c=low_c,
        high_c=high_c,
        allowed=dt.timedelta(minutes=allowed_minutes),
        outside=outside,
        episodes=episodes,
        min_c=min(temperatures, default=None),
        max_c=max(temperatures, default=None),
        samples=len(ordered),
    )


# --- CSV ------------------------------------------------------------------------------------------------


def _parse_timestamp(text: str) -> tuple[dt.datetime | None, str]:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None, f"{text!r} is not an ISO 8601 date and time (e.g. 2026-03-01T08:00:00+01:00)"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, f"{text!r} has no UTC offset (add Z or ±hh:mm): local times are ambiguous"
    return value.astimezone(dt.UTC), ""


def _parse_temperature(text: str) -> tuple[Decimal | None, str]:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None, f"{text!r} is not a number"
    if not value.is_finite():
        return None, f"{text!r} is not a finite number"
    if -value.as_tuple().exponent > MAX_DECIMALS:
        return None, f"{text!r} has more than {MAX_DECIMALS} decimal places"
    if value < ABSOLUTE_ZERO_C or value > HIGHEST_PLAUSIBLE_C:
        return None, f"{text} °C is not a plausible temperature ({ABSOLUTE_ZERO_C} to {HIGHEST_PLAUSIBLE_C} °C)"
    return value, ""


def _file_error(problem: str) -> InvalidInput:
    return InvalidInput(f"file: {problem}", fields={"file": [problem]}, rows=[])


def logger_csv_parse(data: bytes) -> list[Reading]:
    """Parse a logger export (header ``timestamp,temperature_c``). All or nothing: any bad row raises
    InvalidInput with ``rows: [{row, column, problem}]`` (row = 1-based data row, i.e. file line − 1)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _file_error("is not UTF-8 text; export the logger data as CSV") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _file_error(f"is not readable CSV ({exc})") from None
    if header is None:
        raise _file_error("is empty")
    if [h.strip().lower() for h in header] != HEADER:
        raise _file_error(f"the first line must be the header {','.join(HEADER)!r}, found {','.join(header)[:80]!r}")
    readings: list[Reading] = []
    problems: list[dict] = []
    previous: dt.datetime | None = None
    try:
        for record in reader:
            row = reader.line_num - 1
            if not record or all(not cell.strip() for cell in record):
                continue  # blank lines (a trailing newline) carry nothing
            if len(record) != 2:
                problems.append({"row": row, "column": "", "problem": f"expected 2 columns, found {len(record)}"})
                continue
            at, at_problem = _parse_timestamp(record[0].strip())
            temperature, t_problem = _parse_temperature(record[1].strip())
            if at_problem:
                problems.append({"row": row, "column": "timestamp", "problem": at_problem})
            if t_problem:
                problems.append({"row": row, "column": "temperature_c", "problem": t_problem})
            if at is not None and previous is not None and at <= previous:
                problems.append({
                    "row": row, "column": "timestamp",
                    "problem": f"{record[0].strip()} is not after the previous row's time: samples must be in order",
                })
            if at is not None:
                previous = at
            if at is not None and temperature is not None:
                readings.append(Reading(at, temperature))
    except csv.Error as exc:
        problems.append({"row": reader.line_num - 1, "column": "", "problem": f"unreadable CSV: {exc}"})
    if problems:
        raise InvalidInput(
            f"the logger file has {len({p['row'] for p in problems})} bad row(s); nothing was stored",
            fields={"file": ["has bad rows (see rows)"]},
            rows=problems,
        )
    if len(readings) < 2:
        raise _file_error("needs at least two samples to measure time outside the range")
    if len(readings) > MAX_SAMPLES:
        raise _file_error(f"has {len(readings)} samples; at most {MAX_SAMPLES} per shipment")
    return readings
