"""Packaging of a freeze-dried lot into serialised vials."""

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from cmlims.audit import VoidableModel

from .common import PerformedStep, not_in_future, order_errors


class PackagingRun(PerformedStep, VoidableModel):
    """Packaging of one lot: vials packaged and rejected reconcile with the vials the dryer loaded."""

    run_number = models.CharField(max_length=30, unique=True)
    lot = models.OneToOneField("batches.CMLot", on_delete=models.PROTECT, related_name="packaging_run")
    lyophilisation_run = models.OneToOneField("batches.LyophilisationRun", on_delete=models.PROTECT,
                                              related_name="packaging_run")
    started_at = models.DateTimeField(validators=[not_in_future])
    ended_at = models.DateTimeField(validators=[not_in_future])
    vials_packaged = models.PositiveIntegerField(validators=[MinValueValidator(1, "must be at least 1 vial")])
    vials_rejected = models.PositiveIntegerField(default=0, help_text="rejected at visual inspection / crimping")
    storage_location = models.ForeignKey("batches.StorageLocation", on_delete=models.PROTECT,
                                         related_name="packaging_runs", help_text="where the vials go into quarantine")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.run_number

    def change_requires_reason(self) -> bool:
        return self.lot.change_requires_reason() if self.lot_id else False

    def clean(self) -> None:
        errors = order_errors(("started_at", self.started_at, "ended_at", self.ended_at))
        if errors:
            raise ValidationError(errors)


class VialStatus(models.TextChoices):
    AVAILABLE = "available", "available"
    ALLOCATED = "allocated", "allocated"
    SHIPPED = "shipped", "shipped"
    RECEIVED = "received", "received"
    DESTROYED = "destroyed", "destroyed"


class Vial(VoidableModel):
    """One serialised vial: ``serial`` is unique across all products (GS1 AI (21))."""

    serial = models.CharField(max_length=20, unique=True, editable=False)
    lot = models.ForeignKey("batches.CMLot", on_delete=models.PROTECT, related_name="vials")
    packaging_run = models.ForeignKey(PackagingRun, on_delete=models.PROTECT, related_name="vials")
    sequence = models.PositiveIntegerField(editable=False)
    status = models.CharField(max_length=10, choices=VialStatus.choices, default=VialStatus.AVAILABLE,
                              db_index=True, editable=False)
    storage_location = models.ForeignKey("batches.StorageLocation", null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="vials")
    destroyed_reason = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["lot_id", "sequence"]
        constraints = [models.UniqueConstraint(fields=["lot", "sequence"], name="batches_vial_sequence_per_lot")]
        # Live vials only: the counts per lot and status (lot lists, traces) and the donor trace's total over a
        # donor's every lot read this index alone (an index-only scan; 35 against 65 ms for 693,000 vials, B8b).
        indexes = [models.Index(fields=["lot", "status"], condition=models.Q(voided_at__isnull=True),
                                name="batches_vial_live_lot_status")]

    def __str__(self) -> str:
        return self.serial
