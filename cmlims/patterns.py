"""Validators that state their rule as a pattern too, so the API schema can say what they accept: the same
rule, declared once beside the check (``cmlims.api.schema`` reads it)."""

from __future__ import annotations

from collections.abc import Callable

_PATTERNS: dict[int, tuple[Callable, str]] = {}  # by id: Django's validator classes are not hashable


def states_pattern(pattern: str) -> Callable[[Callable], Callable]:
    """Decorate a field validator with the ECMA pattern every value it accepts matches (it may check more)."""
    def register(validator: Callable) -> Callable:
        _PATTERNS[id(validator)] = (validator, pattern)
        return validator
    return register


def validator_pattern(validator: Callable) -> str | None:
    registered = _PATTERNS.get(id(validator))
    return registered[1] if registered and registered[0] is validator else None
