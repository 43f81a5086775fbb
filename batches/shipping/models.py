"""Consignees, shipments of released vials, their chain of custody and temperature logs.

Every model is a GMP record (``AuditedModel``): written only through ``batches.shipping.services``,
never deleted. A shipment is cancelled with a reason; a vial taken back out of a draft shipment keeps
its allocation row with ``released_at`` set, so the history of where a vial has been stays readable.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from batches.shipping.gs1 import sscc_build
from cmlims.audit import AuditedModel, VoidableModel
from cmlims.documents.zpl import label_text_validator


def _user(**kwargs) -> models.ForeignKey:
    return models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", **kwargs)


class Consignee(VoidableModel):
    """A clinic or distributor that receives shipments (voided, never deleted, when no longer supplied)."""

    class Kind(models.TextChoices):
        CLINIC = "clinic", "clinic"
        DISTRIBUTOR = "distributor", "distributor"

    # name, address and city are printed on the shipping label: no printer command or control characters
    name = models.CharField(max_length=200, unique=True, validators=[label_text_validator])
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CLINIC)
    address_line1 = models.CharField(max_length=200, validators=[label_text_validator])
    address_line2 = models.CharField(max_length=200, blank=True, validators=[label_text_validator])
    postal_code = models.CharField(max_length=20, blank=True, validators=[label_text_validator])
    city = models.CharField(max_length=100, validators=[label_text_validator])
    country = models.CharField(
        max_length=2, validators=[RegexValidator(r"^[A-Z]{2}$", "ISO 3166-1 alpha-2 code in capitals, e.g. DE")]
    )
    contact_name = models.CharField(max_length=200)
    contact_phone = models.CharField(max_length=50, blank=True)
    contact_email = models.EmailField(blank=True)
    licence_number = models.CharField(max_length=100, blank=True, help_text="clinic or wholesale licence, if any")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def address_lines(self) -> list[str]:
        city = " ".join(part for part in (self.postal_code, self.city) if part)
        return [line for line in (self.name, self.address_line1, self.address_line2, city, self.country) if line]


class ShipmentStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    PACKED = "packed", "packed"
    SHIPPED = "shipped", "shipped"
    DELIVERED = "delivered", "delivered"
    RECEIPT_ON_HOLD = "receipt_on_hold", "receipt on hold (temperature excursion)"
    RECEIVED = "received", "received"
    CANCELLED = "cancelled", "cancelled"


class Shipment(AuditedModel):
    """One logistic unit (one SSCC) of vials of one product to one consignee.

    The transport range and allowed minutes are copied from the product when the shipment is created:
    the limits a shipment was packed for do not move if the product's master data changes later.
    """

    class ShipperType(models.TextChoices):
        INSULATED_BOX = "insulated_box", "insulated box (passive, qualified)"
        VACUUM_PANEL = "vacuum_panel", "vacuum-insulated panel shipper"
        ACTIVE_CONTAINER = "active_container", "active temperature-controlled container"
        DRY_SHIPPER = "dry_shipper", "liquid-nitrogen dry shipper"

    class Coolant(models.TextChoices):
        GEL_PACKS = "gel_packs", "conditioned gel packs (2-8 °C)"
        PCM = "pcm", "phase-change material"
        DRY_ICE = "dry_ice", "dry ice (UN1845)"
        LN2_VAPOUR = "ln2_vapour", "liquid-nitrogen vapour"
        NONE = "none", "none (ambient)"

    reference = models.CharField(max_length=20, unique=True, null=True, blank=True, editable=False,
                                 help_text="SHP-000123, from the id")
    sscc = models.CharField("SSCC", max_length=18, unique=True, null=True, blank=True, editable=False,
                            help_text="(00) serial shipping container code, with its check digit")
    consignee = models.ForeignKey(Consignee, on_delete=models.PROTECT, related_name="shipments")
    product = models.ForeignKey("batches.Product", on_delete=models.PROTECT, related_name="shipments")
    status = models.CharField(max_length=16, choices=ShipmentStatus.choices, default=ShipmentStatus.DRAFT,
                              db_index=True, editable=False)
    courier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=60, blank=True)
    shipper_type = models.CharField(max_length=20, choices=ShipperType.choices, blank=True)
    coolant = models.CharField(max_length=12, choices=Coolant.choices, blank=True)
    logger_serial = models.CharField(max_length=60, blank=True, help_text="serial of the temperature logger packed")
    notes = models.TextField(blank=True)
    transport_temperature_min_c = models.DecimalField(max_digits=5, decimal_places=1, editable=False)
    transport_temperature_max_c = models.DecimalField(max_digits=5, decimal_places=1, editable=False)
    transport_excursion_allowed_minutes = models.PositiveIntegerField(editable=False)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    created_by = _user(editable=False)
    packed_at = models.DateTimeField(null=True, blank=True, editable=False)
    shipped_at = models.DateTimeField(null=True, blank=True, editable=False)
    delivered_at = models.DateTimeField(null=True, blank=True, editable=False)
    received_at = models.DateTimeField(null=True, blank=True, editable=False)
    received_by_name = models.CharField(max_length=200, blank=True, editable=False,
                                        help_text="the consignee's person who confirmed receipt")
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_by = _user(null=True, blank=True, editable=False)
    cancel_reason = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "-id"], name="shipping_shipment_status_id")]

    def __str__(self) -> str:
        return self.reference or f"shipment {self.pk or '(new)'}"

    def save(self, *args, **kwargs):
        creating = self._state.adding
        super().save(*args, **kwargs)
        if creating and not self.sscc:
            # The id is the SSCC's serial reference (unique by construction, never reused). Assigned in the
            # same audited write, so the creation's one audit entry already carries reference and SSCC.
            self.reference, self.sscc = f"SHP-{self.pk:06d}", sscc_build(self.pk)
            type(self).objects.filter(pk=self.pk).update(reference=self.reference, sscc=self.sscc)

    def change_requires_reason(self) -> bool:
        """A shipped shipment carries a signature: later changes need a reason (rule 8)."""
        return self.status not in (ShipmentStatus.DRAFT, ShipmentStatus.PACKED)


class ShipmentVial(AuditedModel):
    """A vial allocated to a shipment. Released back (draft only) by setting ``released_at``, never deleted.

    The partial unique constraint makes "one live allocation per vial" a database fact: even a path
    that forgot the row lock cannot put one vial in two shipments (rule 10).
    """

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="allocations")
    vial = models.ForeignKey("batches.Vial", on_delete=models.PROTECT, related_name="shipment_allocations")
    allocated_at = models.DateTimeField()
    allocated_by = _user()
    scanned_as = models.CharField(max_length=200, blank=True, help_text="what the scanner or the user sent")
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = _user(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["shipment_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["vial"], condition=models.Q(released_at__isnull=True),
                                    name="shipping_one_live_allocation_per_vial"),
        ]
        indexes = [models.Index(fields=["shipment", "released_at"], name="shipping_alloc_shipment_live")]

    def __str__(self) -> str:
        return f"{self.vial_id} in {self.shipment_id}"


class CustodyKind(models.TextChoices):
    PACKED = "packed", "packed by"
    HANDED_TO_COURIER = "handed_to_courier", "handed to courier"
    DELIVERED = "delivered", "delivered"
    RECEIVED = "received", "received by"


class CustodyEvent(AuditedModel):
    """One hand-off in the chain of custody: who (the user recording it and the other party) and when."""

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="custody_events")
    kind = models.CharField(max_length=20, choices=CustodyKind.choices)
    occurred_at = models.DateTimeField(help_text="when the hand-off happened (UTC)")
    recorded_by = _user()
    recorded_at = models.DateTimeField()
    party = models.CharField(max_length=200, blank=True,
                             help_text="the other side of the hand-off: courier driver, consignee's receiver")
    notes = models.TextField(blank=True)
    signature = models.ForeignKey("esign.Signature", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")

    class Meta:
        ordering = ["shipment_id", "occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d %H:%M} UTC"


class TemperatureLog(VoidableModel):
    """One logger file for a shipment and what it showed. A replacement voids the earlier log (with a reason)."""

    audit_exclude = ("source_csv",)  # the file is kept whole here; the audit entry records its SHA-256

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="temperature_logs")
    file_name = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    source_csv = models.TextField(editable=False)
    original = models.FileField(upload_to="shipping/loggers/%Y/%m/", blank=True, editable=False,
                                help_text="the logger file as uploaded (re-hashed against file_sha256 by verify_audit)")
    uploaded_by = _user()
    uploaded_at = models.DateTimeField()
    sample_count = models.PositiveIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    min_c = models.DecimalField(max_digits=8, decimal_places=3)
    max_c = models.DecimalField(max_digits=8, decimal_places=3)
    range_min_c = models.DecimalField(max_digits=5, decimal_places=1)
    range_max_c = models.DecimalField(max_digits=5, decimal_places=1)
    allowed_minutes = models.PositiveIntegerField()
    minutes_outside = models.DecimalField(max_digits=10, decimal_places=2)
    excursion = models.BooleanField()
    investigation = models.ForeignKey("investigations.Investigation", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["shipment_id", "-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.sample_count} samples, {self.minutes_outside} min outside)"


class TemperatureReading(AuditedModel):
    log = models.ForeignKey(TemperatureLog, on_delete=models.PROTECT, related_name="readings")
    at = models.DateTimeField()
    temperature_c = models.DecimalField(max_digits=8, decimal_places=3)

    class Meta:
        ordering = ["log_id", "at"]
        constraints = [models.UniqueConstraint(fields=["log", "at"], name="shipping_reading_once_per_time")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.temperature_c} °C"
