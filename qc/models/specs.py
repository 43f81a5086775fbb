"""Specifications: one version per product in force at a time, signed into force by a QC officer."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from cmlims.audit import AuditedModel


class SpecStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    IN_FORCE = "in_force", "in force"
    SUPERSEDED = "superseded", "superseded"


class LimitKind(models.TextChoices):
    RANGE = "range", "range"
    MAX = "max", "at most"
    MIN = "min", "at least"
    QUALITATIVE = "qualitative", "qualitative"


class Specification(AuditedModel):
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="specifications")
    version = models.PositiveIntegerField(editable=False)
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=SpecStatus.choices, default=SpecStatus.DRAFT,
                              editable=False, db_index=True)
    effective_from = models.DateTimeField(null=True, blank=True, editable=False,
                                          help_text="lots pooled from this moment are tested against this version")
    approval = models.OneToOneField("esign.Signature", null=True, blank=True, editable=False,
                                    on_delete=models.PROTECT, related_name="+")
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["product", "version"], name="qc_spec_product_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def change_requires_reason(self) -> bool:
        return self.status != SpecStatus.DRAFT


class SpecItem(AuditedModel):
    """One test of a specification with its acceptance criterion, in the unit results are converted to."""

    specification = models.ForeignKey(Specification, on_delete=models.PROTECT, related_name="items")
    order = models.PositiveSmallIntegerField(default=0)
    test = models.CharField(max_length=120)
    method = models.CharField(max_length=200, blank=True)
    unit = models.CharField(max_length=40, blank=True, help_text="results are converted to this unit (pint)")
    limit_kind = models.CharField(max_length=12, choices=LimitKind.choices)
    lower = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    upper = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    lower_inclusive = models.BooleanField(default=True, help_text="≥ rather than >")
    upper_inclusive = models.BooleanField(default=True, help_text="≤ rather than <")
    allowed_values = models.JSONField(default=list, blank=True, help_text="qualitative: every value one may enter")
    passing_values = models.JSONField(default=list, blank=True, help_text="qualitative: the values that pass")
    mandatory = models.BooleanField(default=True, help_text="needed for qc_complete and release")
    demo_limit = models.BooleanField(
        default=False, help_text="the limit is a plausible demo value where the reference calls it product-specific"
    )
    source = models.CharField(max_length=200, blank=True, help_text="where the criterion comes from")

    class Meta:
        ordering = ["specification_id", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["specification", "test"], name="qc_specitem_test")]

    def __str__(self) -> str:
        return f"{self.test} ({self.criterion})"

    @property
    def criterion(self) -> str:
        from qc.units import display

        lower, upper = display(self.lower), display(self.upper)
        unit = f" {self.unit}" if self.unit else ""
        lo = "≥" if self.lower_inclusive else ">"
        hi = "≤" if self.upper_inclusive else "<"
        demo = " [demo limit]" if self.demo_limit else ""
        if self.limit_kind == LimitKind.RANGE:
            return f"{lower}–{upper}{unit}{demo}"
        if self.limit_kind == LimitKind.MAX:
            return f"{hi} {upper}{unit}{demo}"
        if self.limit_kind == LimitKind.MIN:
            return f"{lo} {lower}{unit}{demo}"
        return " / ".join(self.passing_values) + demo

    def clean(self) -> None:
        from qc.units import is_known

        errors: dict[str, list[str]] = {}
        kind = self.limit_kind
        if kind == LimitKind.QUALITATIVE:
            if not self.allowed_values:
                errors["allowed_values"] = ["a qualitative test needs its set of allowed values"]
            if not self.passing_values:
                errors["passing_values"] = ["a qualitative test needs at least one passing value"]
            elif set(self.passing_values) - set(self.allowed_values or []):
                errors["passing_values"] = ["every passing value must be one of the allowed values"]
        else:
            if not self.unit:
                errors["unit"] = ["a numeric test needs a unit"]
            elif not is_known(self.unit):
                errors["unit"] = [f"'{self.unit}' is not a unit the system can convert"]
            if kind in (LimitKind.RANGE, LimitKind.MIN) and self.lower is None:
                errors["lower"] = ["required for this limit kind"]
            if kind in (LimitKind.RANGE, LimitKind.MAX) and self.upper is None:
                errors["upper"] = ["required for this limit kind"]
            if kind == LimitKind.RANGE and None not in (self.lower, self.upper) and self.lower >= self.upper:
                errors["upper"] = ["must be greater than the lower limit"]
        if errors:
            raise ValidationError(errors)
