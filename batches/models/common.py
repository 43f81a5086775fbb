"""Shared pieces of the manufacturing models: validators and the "performed / verified" step fields.

Units are part of every quantity's field name (``volume_ml``, ``temperature_c``, ``pressure_mbar``) so a
number is never read in the wrong unit, in code, in the admin or in the API.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

NON_NEGATIVE = MinValueValidator(Decimal("0"), message="must not be negative")
POSITIVE = MinValueValidator(Decimal("0.001"), message="must be greater than zero")
PERCENT = [
    MinValueValidator(Decimal("0"), message="must not be negative"),
    MaxValueValidator(Decimal("100"), message="cannot exceed 100 %%"),
]
# Instrument clocks and the server drift; a step "completed" a few minutes ahead is tolerated, no more.
FUTURE_TOLERANCE = timedelta(minutes=5)


def not_in_future(value) -> None:
    if value is None:
        return
    # A date may be today; a time may run a few minutes ahead of the server's clock.
    limit = timezone.now() + FUTURE_TOLERANCE if isinstance(value, datetime) else timezone.localdate()
    if value > limit:
        raise ValidationError("cannot be in the future (a completed step is recorded after it happened)")


def order_errors(*pairs: tuple[str, object, str, object]) -> dict[str, list[str]]:
    """[(start_name, start, end_name, end)] -> {end_name: ["must be after start_name"]} where end < start."""
    errors: dict[str, list[str]] = {}
    for start_name, start, end_name, end in pairs:
        if start is not None and end is not None and end < start:
            errors.setdefault(end_name, []).append(f"must not be before {start_name.replace('_', ' ')}")
    return errors


def user_fk(related_name: str = "+", **kwargs) -> models.ForeignKey:
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name=related_name, **kwargs
    )


class PerformedStep(models.Model):
    """Who performed a significant step and who verified it (21 CFR 211.188(b)), with UTC times."""

    performed_by = user_fk(null=True, blank=True, editable=False)
    performed_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    verified_by = user_fk(null=True, blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def performer_ids(self) -> set[int]:
        return {uid for uid in (self.performed_by_id, self.verified_by_id) if uid}
