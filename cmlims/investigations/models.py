"""Deviations and OOS investigations (21 CFR 211.192) on any record: a result, a lot, a shipment."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from cmlims.audit import AuditedModel


class Kind(models.TextChoices):
    OOS = "oos", "out of specification"
    DEVIATION = "deviation", "deviation"
    TEMPERATURE_EXCURSION = "temperature_excursion", "temperature excursion"


class Phase(models.TextChoices):
    # FDA OOS guidance: a laboratory phase first, a full-scale (manufacturing) phase if the lab finds no cause.
    PHASE_1 = "phase_1", "phase I: laboratory investigation"
    PHASE_2 = "phase_2", "phase II: full-scale investigation"


class Status(models.TextChoices):
    OPEN = "open", "open"
    CLOSED = "closed", "closed"


class Disposition(models.TextChoices):
    # What the conclusion decides for the affected product; an excursion cannot close without it.
    USABLE = "usable", "product usable"
    NOT_USABLE = "not_usable", "product not usable"


class Investigation(AuditedModel):
    kind = models.CharField(max_length=30, choices=Kind.choices)
    title = models.CharField(max_length=300)
    details = models.TextField(blank=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    subject = GenericForeignKey("content_type", "object_id")
    subject_repr = models.CharField(max_length=200, blank=True, help_text="what the subject was when opened")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.PHASE_1)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True)
    root_cause = models.TextField(blank=True)
    related_lots_checked = models.TextField(
        blank=True, help_text="which related lots were checked for the same cause, and what was found (211.192)"
    )
    conclusion = models.TextField(blank=True)
    impact_assessment = models.TextField(
        blank=True, help_text="what the deviation means for the product and the records it touches (required to "
                              "close a deviation)",
    )
    product_disposition = models.CharField(
        max_length=12, choices=Disposition.choices, blank=True,
        help_text="whether the affected product may still be used (required to close a temperature excursion)",
    )
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    opened_at = models.DateTimeField()
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    closed_at = models.DateTimeField(null=True, blank=True)
    # The Part 11 signature that closed it (OOS: "investigation closed"; deviation: "deviation closed").
    closing_signature = models.OneToOneField("esign.Signature", null=True, blank=True, on_delete=models.PROTECT,
                                             related_name="+", editable=False)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "status"], name="investigation_subject_idx")]

    def __str__(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def number(self) -> str:
        return f"INV-{self.pk:06d}" if self.pk else "INV-(new)"

    def change_requires_reason(self) -> bool:
        return self.status == Status.CLOSED
