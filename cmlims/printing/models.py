"""Printer (a label or office printer on the site) and PrintDispatch (what happened when a job was sent to one)."""

from django.db import models

from cmlims.audit import AuditedModel


class PrinterKind(models.TextChoices):
    ZPL = "zpl", "Zebra (ZPL over raw TCP)"
    IPP = "ipp", "Office printer (PDF over IPP)"


class Printer(AuditedModel):
    """A printer labels can be sent to. Disabled, never deleted: print outcomes keep pointing at it."""

    name = models.CharField(max_length=100, unique=True)
    location = models.CharField(max_length=200, help_text="room or bench, as on the floor plan")
    kind = models.CharField(max_length=3, choices=PrinterKind.choices)
    address = models.CharField(max_length=300, help_text="zpl: host:port (usually 9100); ipp: ipp://host[:631]/path")
    stock_width_mm = models.DecimalField(max_digits=6, decimal_places=1, help_text="label stock width (mm)")
    stock_height_mm = models.DecimalField(max_digits=6, decimal_places=1, help_text="label stock height (mm)")
    stock_material = models.CharField(max_length=100, help_text="e.g. polypropylene, cryo-rated; A4 paper")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.location})"


class DispatchStatus(models.TextChoices):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class PrintDispatch(models.Model):
    """The print outcome of one document job. Not an AuditedModel (like DocumentJob, operational state);
    the services write each outcome to the audit trail."""

    job = models.OneToOneField("documents.DocumentJob", on_delete=models.PROTECT, related_name="dispatch")
    printer = models.ForeignKey(Printer, on_delete=models.PROTECT, related_name="dispatches")
    status = models.CharField(max_length=10, choices=DispatchStatus.choices, default=DispatchStatus.QUEUED)
    labels_confirmed = models.PositiveIntegerField(default=0, help_text="labels the printer confirmed receiving")
    attempts = models.PositiveIntegerField(default=0, help_text="connections made")
    error = models.TextField(blank=True, help_text="the printer's reason when it failed")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Print of job {self.job_id} on {self.printer.name}: {self.status}"
