"""Hypothesis properties of the pure logic the fuzzer cannot see (issue 18 item 2): unit conversion, spec
evaluation and ZPL escaping. (GS1 element strings and check digits, excursion arithmetic and CSV cells have
theirs in tests/batches/shipping/.)"""

import re
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cmlims.documents.zpl import escape_field, text
from qc.evaluation import ValueProblem, evaluate, passes
from qc.models import LimitKind, SpecItem
from qc.units import UnitError, convert

# Pairs of units of one dimension, with the factor a chemist would write down (from -> to).
SAME_DIMENSION = [("ng/mL", "pg/mL", Decimal(1000)), ("mg/mL", "g/L", Decimal(1)), ("min", "s", Decimal(60)),
                  ("EU/L", "EU/mL", Decimal("0.001")), ("mOsm/kg", "Osm/kg", Decimal("0.001")),
                  ("µg/mL", "mg/mL", Decimal("0.001")), ("mg/g", "% w/w", Decimal("0.1")),
                  ("particles/L", "particles/mL", Decimal("0.001"))]
INCOMPATIBLE = [("pg/mL", "EU/mL"), ("pH", "s"), ("mOsm/kg", "mg/mL"), ("cells/mL", "mg/mL")]
values = st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), allow_nan=False, allow_infinity=False,
                     places=6)


@pytest.mark.req("README-RESULT-EVALUATION")
@given(value=values, pair=st.sampled_from(SAME_DIMENSION))
def test_conversion_scales_by_the_known_factor_and_round_trips(value, pair):
    source, target, factor = pair
    converted = convert(value, source, target)
    assert converted == +Decimal(format(value * factor, ".15g")) or value == 0
    back = convert(converted, target, source)
    assert abs(back - value) <= abs(value) * Decimal("1e-14")  # 15 significant digits kept both ways


@pytest.mark.req("README-RESULT-EVALUATION")
@given(value=values, pair=st.sampled_from(INCOMPATIBLE))
def test_incompatible_units_always_refuse(value, pair):
    with pytest.raises(UnitError, match="incompatible"):
        convert(value, *pair)


@pytest.mark.req("README-RESULT-EVALUATION")
@given(value=values, unit=st.sampled_from(["pg/mL", "EU/mL", "% w/w", "pH", "cells/mL"]))
def test_the_same_unit_is_the_same_value(value, unit):
    assert convert(value, unit, unit) == value


limits = st.decimals(min_value=Decimal("-1e6"), max_value=Decimal("1e6"), allow_nan=False, allow_infinity=False,
                     places=3)


def _item(kind, lower=None, upper=None, lower_inclusive=True, upper_inclusive=True, unit="pg/mL"):
    return SpecItem(test="IL-6", unit=unit, limit_kind=kind, lower=lower, upper=upper,
                    lower_inclusive=lower_inclusive, upper_inclusive=upper_inclusive)


@pytest.mark.req("README-RESULT-EVALUATION")
@given(lower=limits, upper=limits, value=limits, li=st.booleans(), ui=st.booleans())
def test_a_range_passes_exactly_the_values_inside_it(lower, upper, value, li, ui):
    assume(lower <= upper)
    item = _item(LimitKind.RANGE, lower, upper, li, ui)
    inside = (lower < value or (li and value == lower)) and (value < upper or (ui and value == upper))
    assert passes(item, value=value) is inside
    # At least / at most are the range's halves.
    assert passes(_item(LimitKind.MIN, lower=lower, lower_inclusive=li), value=value) is (
        lower < value or (li and value == lower))
    assert passes(_item(LimitKind.MAX, upper=upper, upper_inclusive=ui), value=value) is (
        value < upper or (ui and value == upper))


@pytest.mark.req("README-RESULT-EVALUATION")
@given(lower=limits, upper=limits, value=limits)
def test_evaluation_judges_the_converted_value_whatever_unit_it_was_entered_in(lower, upper, value):
    assume(lower <= upper)
    item = _item(LimitKind.RANGE, lower, upper)
    in_ng = convert(value, "pg/mL", "ng/mL")
    direct, converted = evaluate(item, str(value), "pg/mL"), evaluate(item, str(in_ng), "ng/mL")
    assert direct.value == value and direct.passed is passes(item, value=value)
    assert converted.passed is passes(item, value=converted.value)
    assert abs(converted.value - value) <= abs(value) * Decimal("1e-14")


@pytest.mark.req("README-RESULT-EVALUATION")
@given(junk=st.text(min_size=1, max_size=20))
def test_a_value_that_is_no_number_names_the_value_field(junk):
    assume(junk.strip())
    try:
        number = Decimal(junk.strip().replace(",", "."))
    except ArithmeticError:
        number = None
    assume(number is None or not number.is_finite())
    with pytest.raises(ValueProblem) as exc:
        evaluate(_item(LimitKind.MAX, upper=Decimal(10)), junk, "pg/mL")
    assert exc.value.field == "value"


def _unescape(escaped: str) -> str:
    return re.sub(rb"_([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  escaped.encode("ascii")).decode("utf-8")


@pytest.mark.req("FEAT-LABELS")
@given(st.text())
def test_zpl_escaping_leaves_no_command_character_and_reads_back(value):
    escaped = escape_field(value)
    assert "^" not in escaped and "~" not in escaped
    assert all(0x20 <= ord(char) < 0x7F for char in escaped)  # no control character, no raw non-ASCII
    assert _unescape(escaped) == value


@pytest.mark.req("FEAT-LABELS")
@given(st.text())
def test_a_text_field_is_one_field_whatever_it_holds(value):
    field = text(10, 20, value)
    assert field.count("^FD") == 1 and field.endswith("^FS") and field.count("^FS") == 1
    assert field.count("^") == 5 and "~" not in field  # ^FO ^A0 ^FH ^FD ^FS and nothing the data adds
