"""QC results (never overwritten) and the QC officer's review of a lot's audit trail."""

from django.conf import settings
from django.db import models

from cmlims.audit import AuditedModel


class ResultStatus(models.TextChoices):
    VALID = "valid", "valid"
    SUPERSEDED = "superseded", "superseded by a correction"
    INVALIDATED = "invalidated", "invalidated (signed by a QC officer)"


class ResultSource(models.TextChoices):
    ENTRY = "entry", "entered"
    IMPORT = "import", "imported from an instrument export"


def _user(**kwargs) -> models.ForeignKey:
    return models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", **kwargs)


class ResultImport(AuditedModel):
    """The original instrument export of one CSV import, kept as received (stored file + SHA-256, re-hashed by
    ``verify_audit``); every result it created points here."""

    original = models.FileField(upload_to="qc/imports/%Y/%m/", editable=False)
    file_name = models.CharField(max_length=200, editable=False, help_text="the name the file was uploaded as")
    sha256 = models.CharField(max_length=64, editable=False)
    size_bytes = models.PositiveBigIntegerField(editable=False)
    imported_by = _user(editable=False)
    imported_at = models.DateTimeField(editable=False)
    result_count = models.PositiveIntegerField(editable=False)

    class Meta:
        verbose_name = "QC result import"
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.result_count} results, SHA-256 {self.sha256[:12]}…)"


class QCResult(AuditedModel):
    """One measurement of one spec item on one lot. A correction is a new result that supersedes this one
    (with a reason); a retest is a new result linked to this one, which stays valid and visible; an
    invalidation (a QC officer's signature with a reason) sets a result aside without a replacement. Which
    result counts is decided by those explicit links only (``qc.selectors.counting_results``), never by a
    test time. Pass/fail is computed, never typed."""

    lot = models.ForeignKey("batches.CMLot", on_delete=models.PROTECT, related_name="qc_results")
    spec_item = models.ForeignKey("qc.SpecItem", on_delete=models.PROTECT, related_name="results")
    value_entered = models.CharField(max_length=100, help_text="the value as entered or exported")
    unit_entered = models.CharField(max_length=40, blank=True)
    value = models.DecimalField(max_digits=30, decimal_places=10, null=True, blank=True, editable=False,
                                help_text="numeric value in the spec item's unit")
    qualitative_value = models.CharField(max_length=100, blank=True, editable=False)
    passed = models.BooleanField(editable=False)
    analyst = _user()
    instrument = models.CharField(max_length=120, blank=True)
    tested_at = models.DateTimeField()
    attachment = models.FileField(upload_to="qc/raw/%Y/%m/", blank=True, help_text="raw data (optional)")
    attachment_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    source = models.CharField(max_length=10, choices=ResultSource.choices, default=ResultSource.ENTRY,
                              editable=False)
    imported_from = models.ForeignKey(ResultImport, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="results", editable=False,
                                      help_text="the stored instrument export this result was imported from")
    entered_by = _user(editable=False)
    entered_at = models.DateTimeField(editable=False)
    status = models.CharField(max_length=12, choices=ResultStatus.choices, default=ResultStatus.VALID,
                              editable=False, db_index=True)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="superseded_by", editable=False)
    correction_reason = models.TextField(blank=True, editable=False)
    retest_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="retests",
                                  editable=False)
    approved_by = _user(null=True, blank=True, editable=False)
    approved_at = models.DateTimeField(null=True, blank=True, editable=False)
    approval = models.OneToOneField("esign.Signature", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+", editable=False)
    invalidated_by = _user(null=True, blank=True, editable=False)
    invalidated_at = models.DateTimeField(null=True, blank=True, editable=False)
    invalidation_reason = models.TextField(blank=True, editable=False)
    invalidation = models.OneToOneField("esign.Signature", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+", editable=False)

    class Meta:
        verbose_name = "QC result"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["lot", "spec_item", "status", "tested_at"], name="qc_result_lot_item"),
            # The QC start page's "waiting for approval" (per lot, and not by me): a site's few open results,
            # not its ten years of approved ones (B10a).
            models.Index(fields=["lot", "entered_by", "analyst"], name="qc_result_pending",
                         condition=models.Q(status=ResultStatus.VALID, approved_at__isnull=True)),
        ]

    def __str__(self) -> str:
        unit = f" {self.unit_entered}" if self.unit_entered else ""
        return f"{self.spec_item.test if self.spec_item_id else '?'} = {self.value_entered}{unit}"

    def change_requires_reason(self) -> bool:
        # Approved, or part of a lot that is signed off (the sign-off covers every result of the lot).
        return self.approved_at is not None or (self.lot_id is not None and self.lot.change_requires_reason())

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"


class LotAuditReview(AuditedModel):
    """A QC officer confirms having reviewed the lot's audit trail up to a chain sequence (Annex 11 §9)."""

    lot = models.ForeignKey("batches.CMLot", on_delete=models.PROTECT, related_name="audit_reviews")
    reviewer = _user()
    reviewed_at = models.DateTimeField()
    reviewed_from = models.BigIntegerField(help_text="first audit sequence covered (after the previous review)")
    reviewed_through = models.BigIntegerField(help_text="last audit sequence the reviewer saw")
    entries_reviewed = models.PositiveIntegerField()

    class Meta:
        ordering = ["lot_id", "-reviewed_through"]

    def __str__(self) -> str:
        return f"audit review of lot {self.lot_id} through #{self.reviewed_through} by {self.reviewer_id}"
