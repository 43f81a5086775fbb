"""Pure logic: unit conversion (pint) and pass/fail computation."""

from decimal import Decimal

import pytest

from qc.evaluation import ValueProblem, evaluate
from qc.models import LimitKind, SpecItem
from qc.units import UnitError, convert

D = Decimal


@pytest.mark.parametrize(("value", "from_unit", "to_unit", "expected"), [
    ("711", "ng/L", "pg/mL", "711"),
    ("0.711", "ng/mL", "pg/mL", "711"),
    ("2", "min", "s", "120"),
    ("15", "mg/g", "% w/w", "1.5"),
    ("300", "mOsm/kg", "Osm/kg", "0.3"),
    ("2e12", "particles/L", "particles/mL", "2e9"),
    ("5000", "EU/L", "EU/mL", "5"),
    ("3", "µg/mL", "mg/mL", "0.003"),
    ("7.4", "pH", "pH", "7.4"),
])
def test_conversion(value, from_unit, to_unit, expected):
    assert convert(D(value), from_unit, to_unit) == D(expected)


@pytest.mark.parametrize(("from_unit", "to_unit"), [("pg/mL", "EU/mL"), ("pH", "s"), ("mOsm/kg", "mg/mL"),
                                                    ("s", "% w/w")])
@pytest.mark.req("README-RESULT-EVALUATION")
def test_incompatible_units_are_refused_naming_both(from_unit, to_unit):
    with pytest.raises(UnitError) as exc:
        convert(D(1), from_unit, to_unit)
    assert from_unit in str(exc.value) and to_unit in str(exc.value) and "incompatible" in str(exc.value)


def test_unknown_unit_is_refused():
    with pytest.raises(UnitError, match="unknown unit 'bananas/mL'"):
        convert(D(1), "bananas/mL", "mg/mL")


def spec_item(**fields):
    return SpecItem(test="x", **fields)


RANGE = spec_item(limit_kind=LimitKind.RANGE, unit="pH", lower=D("7.0"), upper=D("8.0"))
MAX_STRICT = spec_item(limit_kind=LimitKind.MAX, unit="EU/mL", upper=D("12.5"), upper_inclusive=False)
MIN = spec_item(limit_kind=LimitKind.MIN, unit="pg/mL", lower=D("500"))
QUAL = spec_item(limit_kind=LimitKind.QUALITATIVE, allowed_values=["no growth", "growth"],
                 passing_values=["no growth"])


@pytest.mark.parametrize(("item", "value", "unit", "passed"), [
    (RANGE, "7.0", "pH", True), (RANGE, "8.0", "pH", True), (RANGE, "6.99", "pH", False), (RANGE, "8,01", "pH", False),
    (MAX_STRICT, "12.4", "EU/mL", True), (MAX_STRICT, "12.5", "EU/mL", False), (MAX_STRICT, "12499", "EU/L", True),
    (MIN, "0.5", "ng/mL", True), (MIN, "499", "pg/mL", False), (MIN, "711", "ng/L", True),
    (QUAL, "No Growth", "", True), (QUAL, "growth", "", False),
])
@pytest.mark.req("README-RESULT-EVALUATION")
def test_pass_fail_is_computed(item, value, unit, passed):
    assert evaluate(item, value, unit).passed is passed


def test_converted_value_is_in_the_spec_unit():
    assert evaluate(MIN, "0.711", "ng/mL").value == D("711")
    assert evaluate(QUAL, "no  growth").qualitative_value == "no growth"


@pytest.mark.parametrize(("item", "value", "unit", "field", "text"), [
    (RANGE, "abc", "pH", "value", "not a number"),
    (RANGE, "NaN", "pH", "value", "finite"),
    (RANGE, "7.2", "", "unit", "required"),
    (MIN, "700", "EU/mL", "unit", "incompatible"),
    (QUAL, "contaminated", "", "value", "allowed values"),
    (QUAL, "growth", "mg", "unit", "no unit"),
    (QUAL, " ", "", "value", "required"),
])
def test_bad_values_name_the_field(item, value, unit, field, text):
    with pytest.raises(ValueProblem) as exc:
        evaluate(item, value, unit)
    assert exc.value.field == field and text in exc.value.problem


def test_spec_item_validation():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        spec_item(limit_kind=LimitKind.RANGE, unit="pH", lower=D("8"), upper=D("7")).clean()
    assert "upper" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        spec_item(limit_kind=LimitKind.QUALITATIVE, allowed_values=["a"], passing_values=["b"]).clean()
    assert "passing_values" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        spec_item(limit_kind=LimitKind.MAX, unit="wibbles", upper=D("1")).clean()
    assert "unit" in exc.value.message_dict
