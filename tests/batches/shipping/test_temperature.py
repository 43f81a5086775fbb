"""Logger CSV parsing and excursion measurement (pure logic), boundaries included."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batches.shipping.temperature import Reading, excursion_compute, logger_csv_parse
from cmlims.exceptions import InvalidInput

START = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
LOW, HIGH = Decimal("2"), Decimal("8")


def log(temperatures, step_minutes=5):
    step = dt.timedelta(minutes=step_minutes)
    return [Reading(START + i * step, Decimal(str(t))) for i, t in enumerate(temperatures)]


def measure(temperatures, allowed=30, step_minutes=5):
    return excursion_compute(log(temperatures, step_minutes), low_c=LOW, high_c=HIGH, allowed_minutes=allowed)


def test_clean_log_has_no_time_outside():
    summary = measure([5, 5.5, 6, 7.9, 8, 2, 4])
    assert summary.outside == dt.timedelta(0) and not summary.is_excursion and summary.episodes == []
    assert (summary.min_c, summary.max_c, summary.samples) == (Decimal("2"), Decimal("8"), 7)


def test_exactly_at_a_limit_is_inside():
    assert measure([8, 8, 8, 2, 2]).outside == dt.timedelta(0)
    assert measure([5, 8.01, 5]).outside == dt.timedelta(minutes=10)
    assert measure([5, 1.99, 5]).outside == dt.timedelta(minutes=10)


def test_segment_between_inside_and_outside_counts_in_full():
    # in, out, in: both segments touch the outside sample -> 2 x 5 min
    summary = measure([5, 9, 5])
    assert summary.outside == dt.timedelta(minutes=10)
    assert summary.episodes[0].start == START and summary.episodes[0].end == START + dt.timedelta(minutes=10)


@pytest.mark.req("RULE-6")
def test_exactly_the_allowed_minutes_is_not_an_excursion():
    # 5 samples above 8 °C between inside samples: 6 segments of 5 min = 30 min = allowed
    summary = measure([5] + [9] * 5 + [5], allowed=30)
    assert summary.outside == dt.timedelta(minutes=30)
    assert not summary.is_excursion


@pytest.mark.req("RULE-6", "FEAT-COLD-CHAIN")
def test_one_sample_over_the_allowed_minutes_is_an_excursion():
    summary = measure([5] + [9] * 6 + [5], allowed=30)
    assert summary.outside == dt.timedelta(minutes=35)
    assert summary.is_excursion
    assert summary.minutes_outside == Decimal("35.00")


def test_separate_episodes_are_summed():
    summary = measure([5, 9, 5, 5, 5, 1, 1, 5], allowed=25)
    assert [e.duration for e in summary.episodes] == [dt.timedelta(minutes=10), dt.timedelta(minutes=15)]
    assert summary.outside == dt.timedelta(minutes=25) and not summary.is_excursion
    assert measure([5, 9, 5, 5, 5, 1, 1, 5], allowed=24).is_excursion


def test_uneven_sampling_and_order():
    readings = [
        Reading(START + dt.timedelta(minutes=7), Decimal("9")),
        Reading(START, Decimal("5")),
        Reading(START + dt.timedelta(minutes=30), Decimal("5")),
    ]
    summary = excursion_compute(readings, low_c=LOW, high_c=HIGH, allowed_minutes=29)
    assert summary.outside == dt.timedelta(minutes=30) and summary.is_excursion


def test_open_ended_range():
    summary = excursion_compute(log([-80, -70, -55, -70]), low_c=None, high_c=Decimal("-60"), allowed_minutes=0)
    assert summary.outside == dt.timedelta(minutes=10) and summary.is_excursion


@given(st.lists(st.integers(min_value=-5, max_value=15), min_size=2, max_size=60), st.integers(0, 300))
def test_excursion_properties(temperatures, allowed):
    summary = measure(temperatures, allowed=allowed)
    total = dt.timedelta(minutes=5 * (len(temperatures) - 1))
    assert dt.timedelta(0) <= summary.outside <= total
    assert summary.outside == sum((e.duration for e in summary.episodes), dt.timedelta(0))
    assert summary.is_excursion == (summary.outside > dt.timedelta(minutes=allowed))
    if all(LOW <= t <= HIGH for t in temperatures):
        assert summary.outside == dt.timedelta(0)


# --- CSV -------------------------------------------------------------------------------------------------


def test_parse_good_file_with_offsets_bom_and_crlf():
    data = (
        "\ufefftimestamp,temperature_c\r\n"
        "2026-03-01T09:00:00+01:00,5.1\r\n"
        "2026-03-01T08:05:00Z,5.2\r\n"
        "2026-03-01T03:10:00-05:00,-0.5\r\n"
        "\r\n"
    ).encode()
    readings = logger_csv_parse(data)
    assert [r.at for r in readings] == [START, START + dt.timedelta(minutes=5), START + dt.timedelta(minutes=10)]
    assert [r.temperature_c for r in readings] == [Decimal("5.1"), Decimal("5.2"), Decimal("-0.5")]
    assert all(r.at.tzinfo == dt.UTC for r in readings)


@pytest.mark.req("FEAT-COLD-CHAIN")
def test_bad_rows_are_all_listed_and_nothing_returned():
    data = (
        b"timestamp,temperature_c\n"
        b"2026-03-01T08:00:00Z,5\n"
        b"2026-03-01T08:05:00,5\n"  # no offset
        b"yesterday,abc\n"  # both columns bad
        b"2026-03-01T08:10:00Z,-300\n"  # below absolute zero
        b"2026-03-01T08:00:00Z,5\n"  # goes back in time
        b"2026-03-01T08:20:00Z,5,extra\n"
        b"2026-03-01T08:25:00Z,NaN\n"
    )
    with pytest.raises(InvalidInput) as caught:
        logger_csv_parse(data)
    rows = caught.value.extra["rows"]
    assert {(r["row"], r["column"]) for r in rows} == {
        (2, "timestamp"), (3, "timestamp"), (3, "temperature_c"), (4, "temperature_c"), (5, "timestamp"),
        (6, ""), (7, "temperature_c"),
    }
    assert any("no UTC offset" in r["problem"] for r in rows)
    assert caught.value.as_body()["code"] == "invalid"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "is empty"),
        (b"time,temp\n2026-03-01T08:00:00Z,5\n", "header"),
        (b"timestamp,temperature_c\n2026-03-01T08:00:00Z,5\n", "at least two samples"),
        (b"\xff\xfe\x00t\x00i", "UTF-8"),
    ],
)
def test_file_level_problems(data, problem):
    with pytest.raises(InvalidInput, match=problem) as caught:
        logger_csv_parse(data)
    assert caught.value.extra["fields"]["file"]
    assert caught.value.extra["rows"] == []


def test_too_many_samples_is_refused():
    from batches.shipping.temperature import MAX_SAMPLES

    step = dt.timedelta(seconds=10)
    rows = "".join(f"{(START + i * step).isoformat()},5\n" for i in range(MAX_SAMPLES + 1))
    with pytest.raises(InvalidInput, match=f"at most {MAX_SAMPLES}"):
        logger_csv_parse(("timestamp,temperature_c\n" + rows).encode())
