"""Cultures, their passages and the conditioned-medium harvests collected from them."""

import math
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cmlims.audit import VoidableModel

from .common import NON_NEGATIVE, PERCENT, POSITIVE, PerformedStep, not_in_future, order_errors
from .lots import signed_lot_downstream


class Culture(PerformedStep, VoidableModel):
    """One expansion of a cell bank for one product: active → conditioning → closed."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active (expanding)"
        CONDITIONING = "conditioning", "conditioning (serum-free)"
        CLOSED = "closed", "closed"

    code = models.CharField(max_length=40, unique=True)
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="cultures")
    bank = models.ForeignKey("batches.CellBank", on_delete=models.PROTECT, related_name="cultures")
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.ACTIVE, editable=False)
    started_at = models.DateTimeField(validators=[not_in_future])
    vessel = models.CharField(max_length=100, help_text="e.g. CellSTACK 10-layer, T175")
    medium_lot = models.CharField(max_length=60)
    reagent_lots = models.TextField(blank=True, help_text="other reagents and their lots, one per line")
    conditioning_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    confluence_at_conditioning_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True, validators=PERCENT, editable=False
    )
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_reason = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return self.code

    def change_requires_reason(self) -> bool:
        return self.pk is not None and signed_lot_downstream(contributions__harvest__culture_id=self.pk)


def population_doublings(cells_seeded: int, cells_harvested: int) -> Decimal:
    """PD = log2(N_harvest / N_seeded), rounded to 0.01 (reference/cell-in-process.csv)."""
    return Decimal(str(round(math.log2(cells_harvested / cells_seeded), 2)))


class Passage(PerformedStep, VoidableModel):
    """One passage of a culture; population doublings are computed, never typed in."""

    culture = models.ForeignKey(Culture, on_delete=models.PROTECT, related_name="passages")
    passage_number = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    seeded_at = models.DateTimeField(validators=[not_in_future])
    harvested_at = models.DateTimeField(validators=[not_in_future])
    vessel = models.CharField(max_length=100, blank=True)
    medium_lot = models.CharField(max_length=60, blank=True)
    reagent_lots = models.TextField(blank=True)
    cells_seeded = models.PositiveBigIntegerField(validators=[MinValueValidator(1, "must be at least 1 cell")])
    cells_harvested = models.PositiveBigIntegerField(validators=[MinValueValidator(1, "must be at least 1 cell")])
    viability_percent = models.DecimalField(max_digits=5, decimal_places=2, validators=PERCENT)
    confluence_percent = models.DecimalField(max_digits=5, decimal_places=2, validators=PERCENT)
    population_doublings = models.DecimalField(max_digits=6, decimal_places=2, editable=False)
    cumulative_population_doublings = models.DecimalField(max_digits=6, decimal_places=2, editable=False)

    class Meta:
        ordering = ["culture_id", "passage_number"]
        constraints = [
            models.UniqueConstraint(fields=["culture", "passage_number"], name="batches_passage_once_per_culture"),
        ]

    def __str__(self) -> str:
        return f"{self.culture_id and self.culture.code} P{self.passage_number}"

    def change_requires_reason(self) -> bool:
        return self.pk is not None and signed_lot_downstream(contributions__harvest__culture_id=self.culture_id)

    def clean(self) -> None:
        errors = order_errors(("seeded_at", self.seeded_at, "harvested_at", self.harvested_at))
        if errors:
            raise ValidationError(errors)


class Harvest(PerformedStep, VoidableModel):
    """One collection of serum-free conditioned medium from a culture in conditioning.

    A harvest may be split across several lots (HarvestContribution); the volumes taken never add
    up to more than ``volume_ml`` (enforced under a row lock by the pooling service).
    """

    culture = models.ForeignKey(Culture, on_delete=models.PROTECT, related_name="harvests")
    sequence = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    conditioning_started_at = models.DateTimeField(validators=[not_in_future])
    conditioning_ended_at = models.DateTimeField(validators=[not_in_future])
    volume_ml = models.DecimalField(max_digits=10, decimal_places=2, validators=[POSITIVE])
    viability_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True,
                                            validators=PERCENT, help_text="of the cells at collection")
    hold_temperature_c = models.DecimalField(
        max_digits=5, decimal_places=1,
        validators=[MinValueValidator(Decimal("-196")), MaxValueValidator(Decimal("40"))],
        help_text="temperature the medium is held at until pooling",
    )
    # The product's limit when the harvest was recorded (kept with the record); never typed per harvest.
    max_hold_hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("72"),
                                         validators=[NON_NEGATIVE], editable=False,
                                         help_text="the product's hold limit when the harvest was recorded")
    container = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["culture_id", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["culture", "sequence"], name="batches_harvest_sequence_per_culture"),
            models.CheckConstraint(condition=models.Q(volume_ml__gt=0), name="batches_harvest_volume_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.culture.code}-H{self.sequence}" if self.culture_id else f"H{self.sequence}"

    def change_requires_reason(self) -> bool:
        return self.pk is not None and signed_lot_downstream(contributions__harvest_id=self.pk)

    @property
    def conditioning_hours(self) -> Decimal | None:
        if not (self.conditioning_started_at and self.conditioning_ended_at):
            return None
        seconds = (self.conditioning_ended_at - self.conditioning_started_at).total_seconds()
        return Decimal(str(round(seconds / 3600, 2)))

    def clean(self) -> None:
        errors = order_errors(
            ("conditioning_started_at", self.conditioning_started_at,
             "conditioning_ended_at", self.conditioning_ended_at),
        )
        if errors:
            raise ValidationError(errors)
