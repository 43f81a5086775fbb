"""The CM lot: created by pooling harvests, then filtered, concentrated, freeze-dried and packaged."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from cmlims.audit import AuditedModel, VoidableModel

from .common import NON_NEGATIVE, POSITIVE, not_in_future, user_fk


class LotStatus(models.TextChoices):
    POOLED = "pooled", "pooled"
    FREEZE_DRYING = "freeze_drying", "freeze-drying"
    PACKAGED = "packaged", "packaged (quarantine)"
    QC_COMPLETE = "qc_complete", "QC complete"
    RELEASED = "released", "released"
    REJECTED = "rejected", "rejected"
    RECALLED = "recalled", "recalled"
    EXPIRED = "expired", "expired"


# Once signed off (or past it) a lot is a signed record: changes need a reason (rule 8).
SIGNED_STATUSES = frozenset({LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.RECALLED, LotStatus.EXPIRED})


def signed_lot_downstream(**lookup) -> bool:
    """Whether a signed lot (released, rejected, recalled, expired) is made from the record ``lookup`` names
    (``contributions__harvest_id=…``): from then on a change to that record needs a reason (rule 8), as a
    change to the lot itself does, because the lot's signature covers its whole genealogy."""
    return CMLot.objects.filter(status__in=SIGNED_STATUSES, **lookup).exists()


class LotNumberSequence(models.Model):
    """Counter per (site prefix, year) behind lot numbers like CM26-0042.

    Not a GMP record itself (the lot's creation entry is): a row lock on it serialises numbering.
    """

    prefix = models.CharField(max_length=10)
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prefix", "year"], name="batches_lot_sequence_unique")]

    def __str__(self) -> str:
        return f"{self.prefix}{self.year % 100:02d}: {self.last}"


class CMLot(VoidableModel):
    """One lot of conditioned medium. Status changes only through ``batches.services.lots.lot_transition``
    (or ``lot_set_status_signed`` for sign-off); hold is a flag with a reason (QC side)."""

    class IntegrityTest(models.TextChoices):
        BUBBLE_POINT = "bubble_point", "bubble point"
        PRESSURE_HOLD = "pressure_hold", "pressure hold"
        DIFFUSION = "diffusion", "forward flow / diffusion"

    lot_number = models.CharField(max_length=20, unique=True, editable=False)
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="lots")
    status = models.CharField(max_length=16, choices=LotStatus.choices, default=LotStatus.POOLED,
                              editable=False, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    on_hold = models.BooleanField(default=False, editable=False, db_index=True)
    hold_reason = models.TextField(blank=True, editable=False)
    held_at = models.DateTimeField(null=True, blank=True, editable=False)
    held_by = user_fk(null=True, blank=True, editable=False)
    expiry = models.DateField(null=True, blank=True, editable=False, help_text="set at packaging from shelf life")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    # pooling
    pooled_at = models.DateTimeField(validators=[not_in_future])
    pooled_by = user_fk(editable=False)
    pool_verified_by = user_fk(null=True, blank=True, editable=False)
    pool_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    volume_in_ml = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"), editable=False,
                                       help_text="sum of the volumes taken from the harvests")

    # filtration (sterile-grade, 0.22 µm) with the filter integrity test
    filter_pore_size_um = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True,
                                              validators=[POSITIVE, MaxValueValidator(Decimal("0.45"))])
    filter_lot = models.CharField(max_length=60, blank=True)
    filtered_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    filtration_performed_by = user_fk(null=True, blank=True, editable=False)
    filtration_verified_by = user_fk(null=True, blank=True, editable=False)
    filtration_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    integrity_test_method = models.CharField(max_length=20, choices=IntegrityTest.choices, blank=True)
    integrity_test_limit_bar = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True,
                                                   validators=[NON_NEGATIVE])
    integrity_test_measured_bar = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True,
                                                      validators=[NON_NEGATIVE])
    integrity_test_passed = models.BooleanField(null=True, blank=True, editable=False)
    volume_filtered_ml = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True,
                                             validators=[NON_NEGATIVE])

    # concentration (tangential-flow ultrafiltration)
    concentration_cutoff_kda = models.DecimalField(max_digits=6, decimal_places=1, null=True, blank=True,
                                                   validators=[POSITIVE])
    concentration_factor = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True,
                                               validators=[MinValueValidator(Decimal("1"), "must be at least 1")])
    concentrated_at = models.DateTimeField(null=True, blank=True, validators=[not_in_future])
    concentration_performed_by = user_fk(null=True, blank=True, editable=False)
    concentration_verified_by = user_fk(null=True, blank=True, editable=False)
    concentration_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    volume_out_ml = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True,
                                        validators=[NON_NEGATIVE], help_text="bulk volume after processing")
    yield_percent = models.DecimalField(
        max_digits=6, decimal_places=2, null=True, blank=True, editable=False,
        help_text="volume recovered (volume out × concentration factor) as a share of volume in",
    )

    class Meta:
        verbose_name = "CM lot"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["product", "status"], name="batches_lot_product_status"),
            models.Index(fields=["status", "-id"], name="batches_lot_status_id"),
            # The QC start page's oldest lots in QC, read first by this order (B10a).
            models.Index(fields=["status_changed_at", "id"], name="batches_lot_in_qc",
                         condition=models.Q(status__in=[LotStatus.PACKAGED, LotStatus.QC_COMPLETE],
                                                  voided_at__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(volume_in_ml__gte=0), name="batches_lot_volume_in_nonneg"),
        ]

    def __str__(self) -> str:
        return self.lot_number

    def change_requires_reason(self) -> bool:
        """True once the lot is released or later (a signed record, rule 8)."""
        return self.status in SIGNED_STATUSES

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.volume_filtered_ml is not None and self.volume_filtered_ml > self.volume_in_ml:
            errors["volume_filtered_ml"] = [f"cannot exceed the volume pooled ({self.volume_in_ml} mL)"]
        base = self.volume_filtered_ml if self.volume_filtered_ml is not None else self.volume_in_ml
        if self.volume_out_ml is not None and base is not None and self.volume_out_ml > base:
            errors["volume_out_ml"] = [f"cannot exceed the volume going in ({base} mL)"]
        for later, name in ((self.filtered_at, "filtered_at"), (self.concentrated_at, "concentrated_at")):
            if later and self.pooled_at and later < self.pooled_at:
                errors.setdefault(name, []).append("must not be before pooling")
        if self.concentrated_at and self.filtered_at and self.concentrated_at < self.filtered_at:
            errors.setdefault("concentrated_at", []).append("must not be before filtration")
        if errors:
            raise ValidationError(errors)


class HarvestContribution(AuditedModel):
    """The volume one lot took from one harvest (a harvest joins a given lot once)."""

    lot = models.ForeignKey(CMLot, on_delete=models.PROTECT, related_name="contributions")
    harvest = models.ForeignKey("batches.Harvest", on_delete=models.PROTECT, related_name="contributions")
    volume_ml = models.DecimalField(max_digits=10, decimal_places=2, validators=[POSITIVE])
    added_by = user_fk(editable=False)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["lot_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["lot", "harvest"], name="batches_harvest_once_per_lot"),
            models.CheckConstraint(condition=models.Q(volume_ml__gt=0), name="batches_contribution_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.volume_ml} mL of harvest {self.harvest_id} into lot {self.lot_id}"

    def change_requires_reason(self) -> bool:
        return self.lot.change_requires_reason() if self.lot_id else False
