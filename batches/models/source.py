"""Where the cells come from: the coded donor (CellSource) and its master/working cell banks."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from cmlims.audit import VoidableModel

from .common import PERCENT, PerformedStep, not_in_future
from .lots import signed_lot_downstream

# Identity acceptance (ISCT minimal criteria, reference/cell-in-process.csv).
POSITIVE_MARKER_MIN_PERCENT = Decimal("95")
NEGATIVE_MARKER_MAX_PERCENT = Decimal("2")
POSITIVE_MARKERS = ("cd73_percent", "cd90_percent", "cd105_percent")
NEGATIVE_MARKERS = ("cd34_percent", "cd45_percent", "cd14_percent", "cd19_percent", "hla_dr_percent")


class CellSource(VoidableModel):
    """A donor, known only by code: no names or other direct identifiers are stored here."""

    class Tissue(models.TextChoices):
        ADIPOSE = "adipose", "adipose tissue"
        BONE_MARROW = "bone_marrow", "bone marrow"
        UMBILICAL_CORD = "umbilical_cord", "umbilical cord"
        WHARTONS_JELLY = "whartons_jelly", "Wharton's jelly"

    class Consent(models.TextChoices):
        PENDING = "pending", "pending"
        GIVEN = "given", "given"
        WITHDRAWN = "withdrawn", "withdrawn"

    class Eligibility(models.TextChoices):
        PENDING = "pending", "pending"
        ELIGIBLE = "eligible", "eligible"
        INELIGIBLE = "ineligible", "ineligible"

    code = models.CharField(
        max_length=40, unique=True,
        validators=[RegexValidator(r"^[A-Z0-9][A-Z0-9-]{2,39}$", "use upper-case letters, digits and '-' only")],
        help_text="coded donor id (no names)",
    )
    tissue = models.CharField(max_length=20, choices=Tissue.choices)
    collection_date = models.DateField(validators=[not_in_future])
    consent_status = models.CharField(max_length=12, choices=Consent.choices, default=Consent.PENDING)
    consent_recorded_on = models.DateField(null=True, blank=True, validators=[not_in_future])
    eligibility_status = models.CharField(max_length=12, choices=Eligibility.choices, default=Eligibility.PENDING)
    eligibility_determined_on = models.DateField(null=True, blank=True, validators=[not_in_future])
    eligibility_notes = models.TextField(blank=True, help_text="screening and testing summary (no identifiers)")
    # Eligibility is determined and signed by a QC officer ("eligibility determined"), never typed by lab
    # staff (sources.donor_eligibility_determine); a later change to the screening data clears it.
    eligibility_reason = models.TextField(blank=True, editable=False,
                                          help_text="why the donor was determined eligible or ineligible")
    eligibility_evidence = models.TextField(blank=True, editable=False,
                                            help_text="the screening and testing records the determination rests on")
    eligibility_determined_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, editable=False,
                                                  on_delete=models.PROTECT, related_name="+")
    eligibility_signature = models.OneToOneField("esign.Signature", null=True, blank=True, editable=False,
                                                 on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["code"]
        verbose_name = "cell source (donor)"

    def __str__(self) -> str:
        return self.code

    def change_requires_reason(self) -> bool:
        return self.pk is not None and signed_lot_downstream(contributions__harvest__culture__bank__source_id=self.pk)

    @property
    def is_eligible_with_consent(self) -> bool:
        """Release rule 3: every donor in a lot's genealogy is eligible with consent recorded."""
        return (
            self.eligibility_status == self.Eligibility.ELIGIBLE
            and self.eligibility_signature_id is not None  # a signed determination, not a typed status
            and self.consent_status == self.Consent.GIVEN
            and self.consent_recorded_on is not None
        )

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.consent_status == self.Consent.GIVEN and not self.consent_recorded_on:
            errors["consent_recorded_on"] = ["required when consent is given"]
        if self.eligibility_status != self.Eligibility.PENDING and not self.eligibility_determined_on:
            errors["eligibility_determined_on"] = ["required once eligibility is determined"]
        if errors:
            raise ValidationError(errors)


class CellBank(PerformedStep, VoidableModel):
    """A master or working cell bank frozen from one donor's cells, with its identity results."""

    class Kind(models.TextChoices):
        MASTER = "master", "master cell bank"
        WORKING = "working", "working cell bank"

    code = models.CharField(max_length=40, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.ForeignKey(CellSource, on_delete=models.PROTECT, related_name="banks")
    parent_bank = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived_banks",
        help_text="the master bank a working bank was made from",
    )
    passage_at_freeze = models.PositiveSmallIntegerField()
    frozen_on = models.DateField(validators=[not_in_future])
    vials_frozen = models.PositiveIntegerField(validators=[MinValueValidator(1, "must be at least 1")])
    vials_on_hand = models.PositiveIntegerField()
    cells_per_vial = models.PositiveBigIntegerField(null=True, blank=True)
    storage_location = models.ForeignKey(
        "batches.StorageLocation", null=True, blank=True, on_delete=models.PROTECT, related_name="cell_banks"
    )
    cd73_percent = models.DecimalField("CD73 %", max_digits=5, decimal_places=2, null=True, blank=True,
                                       validators=PERCENT)
    cd90_percent = models.DecimalField("CD90 %", max_digits=5, decimal_places=2, null=True, blank=True,
                                       validators=PERCENT)
    cd105_percent = models.DecimalField("CD105 %", max_digits=5, decimal_places=2, null=True, blank=True,
                                        validators=PERCENT)
    cd34_percent = models.DecimalField("CD34 %", max_digits=5, decimal_places=2, null=True, blank=True,
                                       validators=PERCENT)
    cd45_percent = models.DecimalField("CD45 %", max_digits=5, decimal_places=2, null=True, blank=True,
                                       validators=PERCENT)
    cd14_percent = models.DecimalField("CD14/CD11b %", max_digits=5, decimal_places=2, null=True, blank=True,
                                       validators=PERCENT)
    cd19_percent = models.DecimalField("CD19/CD79a %", max_digits=5, decimal_places=2, null=True, blank=True,
                                       validators=PERCENT)
    hla_dr_percent = models.DecimalField("HLA-DR %", max_digits=5, decimal_places=2, null=True, blank=True,
                                         validators=PERCENT)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def change_requires_reason(self) -> bool:
        # A working bank's lots come from its master bank too.
        return self.pk is not None and (
            signed_lot_downstream(contributions__harvest__culture__bank_id=self.pk)
            or signed_lot_downstream(contributions__harvest__culture__bank__parent_bank_id=self.pk))

    @property
    def identity_conforms(self) -> bool | None:
        """ISCT identity: positives ≥95 %, negatives ≤2 %; None while any marker is missing."""
        values = [getattr(self, n) for n in POSITIVE_MARKERS + NEGATIVE_MARKERS]
        if any(v is None for v in values):
            return None
        return all(getattr(self, n) >= POSITIVE_MARKER_MIN_PERCENT for n in POSITIVE_MARKERS) and all(
            getattr(self, n) <= NEGATIVE_MARKER_MAX_PERCENT for n in NEGATIVE_MARKERS
        )

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.vials_on_hand is not None and self.vials_frozen is not None and self.vials_on_hand > self.vials_frozen:
            errors["vials_on_hand"] = ["cannot exceed vials frozen"]
        if self.kind == self.Kind.MASTER and self.parent_bank_id:
            errors["parent_bank"] = ["a master bank has no parent bank"]
        if self.parent_bank_id and self.source_id and self.parent_bank.source_id != self.source_id:
            errors["parent_bank"] = ["the parent bank comes from another donor"]
        if errors:
            raise ValidationError(errors)
