"""Product master data and storage locations."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from stdnum import ean

from cmlims.audit import VoidableModel
from cmlims.documents.zpl import label_text_validator
from cmlims.patterns import states_pattern

from .common import NON_NEGATIVE, PERCENT, POSITIVE, order_errors


@states_pattern(r"^(?:\d{8}|\d{12,14})$")  # the check digit no pattern can state
def validate_gtin(value: str) -> None:
    """GTIN-8/12/13/14 with a correct check digit (GS1 general specifications §7.9)."""
    if not value.isdigit() or len(value) not in (8, 12, 13, 14):
        raise ValidationError("must be 8, 12, 13 or 14 digits")
    if not ean.is_valid(value):
        raise ValidationError("check digit is wrong")


def gtin14(value: str) -> str:
    """GS1 AI (01) always carries 14 digits; shorter GTINs are left-padded with zeros."""
    return value.zfill(14)


class Product(VoidableModel):
    name = models.CharField(max_length=200, unique=True, validators=[label_text_validator])  # printed on labels
    gtin = models.CharField(
        "GTIN", max_length=14, unique=True, validators=[validate_gtin], help_text="stored as GTIN-14"
    )
    description = models.TextField(blank=True)
    shelf_life_days = models.PositiveIntegerField(validators=[MinValueValidator(1, "must be at least 1 day")])
    storage_temperature_min_c = models.DecimalField(max_digits=5, decimal_places=1)
    storage_temperature_max_c = models.DecimalField(max_digits=5, decimal_places=1)
    transport_temperature_min_c = models.DecimalField(max_digits=5, decimal_places=1)
    transport_temperature_max_c = models.DecimalField(max_digits=5, decimal_places=1)
    transport_excursion_allowed_minutes = models.PositiveIntegerField(
        default=0, help_text="minutes outside the transport range tolerated per shipment (summed)"
    )
    max_passage = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(50)], help_text="highest passage number allowed (e.g. 5)"
    )
    max_population_doublings = models.DecimalField(
        max_digits=5, decimal_places=2, validators=[POSITIVE], help_text="cumulative PD limit of a culture"
    )
    min_viability_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("70"),
                                                validators=PERCENT)
    conditioning_min_hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("48"),
                                                 validators=[NON_NEGATIVE])
    conditioning_max_hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("72"),
                                                 validators=[NON_NEGATIVE])
    max_hold_hours = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal("72"),
                                         validators=[NON_NEGATIVE],
                                         help_text="longest a harvest may be held before pooling (the process limit)")
    nominal_fill_volume_ml = models.DecimalField(max_digits=8, decimal_places=3, default=Decimal("1.000"),
                                                 validators=[POSITIVE])
    requires_second_person_verification = models.BooleanField(
        default=True, help_text="each significant step is verified by a second person (211.188(b))"
    )
    # The process limits in force: the values a QC officer last approved with a signature ("product limits
    # approved"), version by version. Lab staff's changes to the fields above wait until approved; the
    # culture, harvest and pooling checks read only these (products.product_limits_in_force).
    limits_approved = models.JSONField(default=dict, blank=True, editable=False,
                                       help_text="the approved process limits in force (values as text)")
    limits_version = models.PositiveIntegerField(default=0, editable=False)
    limits_approval = models.OneToOneField("esign.Signature", null=True, blank=True, editable=False,
                                           on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.gtin and self.gtin.isdigit():
            self.gtin = gtin14(self.gtin)
        errors = order_errors(
            ("storage_temperature_min_c", self.storage_temperature_min_c,
             "storage_temperature_max_c", self.storage_temperature_max_c),
            ("transport_temperature_min_c", self.transport_temperature_min_c,
             "transport_temperature_max_c", self.transport_temperature_max_c),
            ("conditioning_min_hours", self.conditioning_min_hours,
             "conditioning_max_hours", self.conditioning_max_hours),
        )
        if errors:
            raise ValidationError(errors)


class StorageLocation(VoidableModel):
    class Kind(models.TextChoices):
        SITE = "site", "site / room"
        FREEZER = "freezer", "freezer"
        LN2 = "ln2", "liquid-nitrogen tank"
        FRIDGE = "fridge", "refrigerator"
        SHELF = "shelf", "shelf / rack / box"

    code = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    temperature_min_c = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    temperature_max_c = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    # A quarantine store names the store its vials move to when their lot is released (released stock is kept
    # apart from quarantine, 21 CFR 211.142 / 1271.265); empty: vials stay where they are.
    released_stock_location = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="quarantine_stores",
        help_text="for a quarantine store: where its vials go when their lot is released",
    )

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    def clean(self) -> None:
        errors = order_errors(("temperature_min_c", self.temperature_min_c, "temperature_max_c",
                               self.temperature_max_c))
        if self.parent_id and self.pk and self.parent_id == self.pk:
            errors.setdefault("parent", []).append("a location cannot contain itself")
        if errors:
            raise ValidationError(errors)
