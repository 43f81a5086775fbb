"""Pass/fail of a value against a spec item: computed here, never typed by anyone."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from qc.models import LimitKind, SpecItem
from qc.units import UnitError, convert


class ValueProblem(ValueError):
    """A value that cannot be evaluated; ``field`` names the input that is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class Evaluated:
    value: Decimal | None
    qualitative_value: str
    passed: bool


def passes(item: SpecItem, value: Decimal | None = None, qualitative: str = "") -> bool:
    kind = item.limit_kind
    if kind == LimitKind.QUALITATIVE:
        return qualitative in item.passing_values
    if value is None:
        return False
    checks_lower = kind in (LimitKind.RANGE, LimitKind.MIN)
    checks_upper = kind in (LimitKind.RANGE, LimitKind.MAX)
    if checks_lower and (value < item.lower or (value == item.lower and not item.lower_inclusive)):
        return False
    return not (checks_upper and (value > item.upper or (value == item.upper and not item.upper_inclusive)))


def _match_allowed(item: SpecItem, text: str) -> str:
    wanted = " ".join(text.split()).casefold()
    for allowed in item.allowed_values:
        if allowed.casefold() == wanted:
            return allowed
    raise ValueProblem("value", f"'{text}' is not one of the allowed values for {item.test}: "
                                + ", ".join(item.allowed_values))


def evaluate(item: SpecItem, value: str, unit: str = "") -> Evaluated:
    """Parse ``value`` (with ``unit`` for numeric items), convert it to the item's unit and judge it."""
    text = (value or "").strip()
    if not text:
        raise ValueProblem("value", "required")
    if item.limit_kind == LimitKind.QUALITATIVE:
        if (unit or "").strip():
            raise ValueProblem("unit", f"{item.test} is qualitative and takes no unit")
        chosen = _match_allowed(item, text)
        return Evaluated(None, chosen, passes(item, qualitative=chosen))
    try:
        number = Decimal(text.replace(",", "."))  # decimal comma from European instrument exports
    except InvalidOperation as exc:
        raise ValueProblem("value", f"'{text}' is not a number") from exc
    if not number.is_finite():
        raise ValueProblem("value", f"'{text}' is not a finite number")
    if not (unit or "").strip():
        raise ValueProblem("unit", f"required for {item.test} (spec unit: {item.unit})")
    try:
        converted = convert(number, unit, item.unit)
    except UnitError as exc:
        raise ValueProblem("unit", str(exc)) from exc
    return Evaluated(converted, "", passes(item, value=converted))
