"""Freeze-drying (lyophilisation) runs and their phases."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cmlims.audit import VoidableModel

from .common import POSITIVE, PerformedStep, not_in_future, order_errors, user_fk

SHELF_TEMPERATURE_RANGE_C = (Decimal("-80"), Decimal("60"))
CHAMBER_PRESSURE_MAX_MBAR = Decimal("1100")  # atmospheric during freezing; drying runs at ~0.05–0.3 mbar


def _shelf_c(**kwargs) -> models.DecimalField:
    low, high = SHELF_TEMPERATURE_RANGE_C
    return models.DecimalField(
        max_digits=5, decimal_places=1,
        validators=[MinValueValidator(low, f"below the dryer's range ({low} °C)"),
                    MaxValueValidator(high, f"above the dryer's range ({high} °C)")],
        **kwargs,
    )


def _pressure_mbar(**kwargs) -> models.DecimalField:
    return models.DecimalField(
        max_digits=8, decimal_places=4,
        validators=[MinValueValidator(Decimal("0"), "must not be negative"),
                    MaxValueValidator(CHAMBER_PRESSURE_MAX_MBAR, "above atmospheric pressure")],
        **kwargs,
    )


class LyophilisationRun(PerformedStep, VoidableModel):
    """One freeze-drying run of one lot: vials loaded, phases, end of primary drying, stoppering, alarms.

    ``performed_by``/``performed_at`` is the loading of the dryer; completion has its own fields.
    """

    class EndOfPrimaryDrying(models.TextChoices):
        PRESSURE_RISE = "pressure_rise", "pressure rise test"
        COMPARATIVE_PRESSURE = "comparative_pressure", "Pirani vs capacitance manometer converge"
        PRODUCT_TEMPERATURE = "product_temperature", "product temperature reaches shelf temperature"

    class Stoppering(models.TextChoices):
        VACUUM = "vacuum", "under vacuum"
        NITROGEN = "nitrogen", "nitrogen back-fill"

    run_number = models.CharField(max_length=30, unique=True)
    lot = models.OneToOneField("batches.CMLot", on_delete=models.PROTECT, related_name="lyophilisation_run")
    dryer = models.CharField(max_length=60, help_text="equipment id")
    recipe = models.CharField(max_length=60)
    recipe_version = models.CharField(max_length=20)
    vials_loaded = models.PositiveIntegerField(validators=[MinValueValidator(1, "must be at least 1 vial")])
    fill_volume_ml = models.DecimalField(max_digits=8, decimal_places=3, validators=[POSITIVE])
    started_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    ended_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    end_of_primary_drying_method = models.CharField(max_length=24, choices=EndOfPrimaryDrying.choices, blank=True)
    end_of_primary_drying_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    end_of_primary_drying_evidence = models.TextField(blank=True, help_text="readings that show sublimation ended")
    stoppering_method = models.CharField(max_length=10, choices=Stoppering.choices, blank=True)
    stoppering_pressure_mbar = _pressure_mbar(null=True, blank=True)
    stoppered_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    alarms = models.TextField(blank=True, help_text="every alarm raised by the dryer, with its time and response")
    alarm_count = models.PositiveIntegerField(default=0)
    completed_by = user_fk(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.run_number

    @property
    def is_complete(self) -> bool:
        return self.completed_at is not None

    def change_requires_reason(self) -> bool:
        return self.lot.change_requires_reason() if self.lot_id else False

    def clean(self) -> None:
        errors = order_errors(
            ("started_at", self.started_at, "ended_at", self.ended_at),
            ("started_at", self.started_at, "end_of_primary_drying_at", self.end_of_primary_drying_at),
            ("end_of_primary_drying_at", self.end_of_primary_drying_at, "ended_at", self.ended_at),
            ("started_at", self.started_at, "stoppered_at", self.stoppered_at),
        )
        if errors:
            raise ValidationError(errors)


class LyophilisationPhase(VoidableModel):
    """Set point and actual shelf temperature, chamber pressure and duration of one phase of a run."""

    class Phase(models.TextChoices):
        FREEZING = "freezing", "freezing"
        PRIMARY = "primary_drying", "primary drying"
        SECONDARY = "secondary_drying", "secondary drying"

    run = models.ForeignKey(LyophilisationRun, on_delete=models.PROTECT, related_name="phases")
    phase = models.CharField(max_length=16, choices=Phase.choices)
    shelf_temperature_setpoint_c = _shelf_c()
    shelf_temperature_actual_c = _shelf_c()
    chamber_pressure_setpoint_mbar = _pressure_mbar()
    chamber_pressure_actual_mbar = _pressure_mbar()
    started_at = models.DateTimeField(validators=[not_in_future])
    ended_at = models.DateTimeField(validators=[not_in_future])
    duration_minutes = models.PositiveIntegerField(editable=False, default=0)

    class Meta:
        ordering = ["run_id", "started_at"]
        constraints = [models.UniqueConstraint(fields=["run", "phase"], name="batches_lyo_phase_once_per_run")]

    def __str__(self) -> str:
        return f"{self.get_phase_display()}"

    def change_requires_reason(self) -> bool:
        return self.run.change_requires_reason() if self.run_id else False

    def clean(self) -> None:
        errors = order_errors(("started_at", self.started_at, "ended_at", self.ended_at))
        if errors:
            raise ValidationError(errors)
        if self.started_at and self.ended_at:
            self.duration_minutes = int((self.ended_at - self.started_at).total_seconds() // 60)
