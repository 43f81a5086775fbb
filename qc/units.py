"""Units of QC results: pint with Decimal magnitudes, plus the lab units pint does not know.

A result is stored as entered (value and unit) and converted to the unit of its spec item; a unit
that cannot be converted (pg/mL to EU/mL) is refused with a message naming both units.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import pint

# Lab units pint lacks; dimensions of their own keep them from converting into anything else.
# ("particle" is pint's own, 1/N_A mol, so particles/mL converts to particles/L.)
_DEFINITIONS = [
    "endotoxin_unit = [endotoxin] = EU",
    "pH_unit = [acidity] = pH",
    "osmole = [osmolality_amount] = Osm = osmol",
    "percent_mass = 0.01 = percent_w_w",
    "cell = count = cells",
]

# How people write units in instrument exports -> a form pint parses.
_ALIASES = {
    "%": "percent",
    "% w/w": "percent_w_w",
    "%w/w": "percent_w_w",
    "% (w/w)": "percent_w_w",
    "µ": "u",
    "μ": "u",
}


class UnitError(ValueError):
    """A unit that is unknown or cannot be converted to the spec's unit."""


@lru_cache(maxsize=1)
def registry() -> pint.UnitRegistry:
    ureg = pint.UnitRegistry(non_int_type=Decimal, autoconvert_offset_to_baseunit=False)
    for line in _DEFINITIONS:
        ureg.define(line)
    return ureg


def normalise(unit: str) -> str:
    text = (unit or "").strip()
    if text in _ALIASES:
        return _ALIASES[text]
    for raw, replacement in (("µ", "u"), ("μ", "u"), ("% w/w", "percent_w_w")):
        text = text.replace(raw, replacement)
    return text


@lru_cache(maxsize=512)
def conversion_factor(from_unit: str, to_unit: str) -> Decimal:
    """Multiplier from ``from_unit`` to ``to_unit`` (cached: an import converts thousands of rows)."""
    ureg = registry()
    try:
        source = ureg.parse_units(normalise(from_unit))
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError, AttributeError,
            TypeError, SyntaxError) as exc:
        raise UnitError(f"unknown unit '{from_unit}'") from exc
    try:
        target = ureg.parse_units(normalise(to_unit))
    except (pint.errors.UndefinedUnitError, ValueError, AttributeError, TypeError, SyntaxError) as exc:
        raise UnitError(f"the specification's unit '{to_unit}' is not a known unit") from exc
    try:
        factor = ureg.Quantity(Decimal(1), source).to(target).magnitude
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"'{from_unit}' cannot be converted to '{to_unit}' (incompatible units)") from exc
    return Decimal(factor)


def convert(value: Decimal, from_unit: str, to_unit: str) -> Decimal:
    """``value`` in ``from_unit`` expressed in ``to_unit``; same spelling needs no registry."""
    if normalise(from_unit) == normalise(to_unit):
        return value
    result = value * conversion_factor(from_unit, to_unit)
    # Conversion factors like 1e-9 carry long tails; 15 significant digits is beyond any instrument.
    return result.normalize() if result == 0 else +Decimal(format(result, ".15g"))


def is_known(unit: str) -> bool:
    try:
        registry().parse_units(normalise(unit))
    except Exception:  # noqa: BLE001 - any parse failure means "unknown"
        return False
    return True


def display(value) -> str:
    """A limit or value as people write it: 120, 7.4, 1e+9 (no trailing zeros from the database)."""
    if value is None:
        return ""
    value = Decimal(value).normalize()
    return format(value, "e") if abs(value) >= 1_000_000 else format(value, "f")
