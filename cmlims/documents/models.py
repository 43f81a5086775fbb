"""DocumentJob (the outbox row of one requested document) and LabelPrint (one issued label)."""

from django.conf import settings
from django.db import models

from cmlims.audit import AuditedModel


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class DocumentJob(models.Model):
    """One requested document, created in the request's transaction and sent to Celery on commit.

    Not an AuditedModel: progress and heartbeats change every second while a job runs, which is
    operational state, not a GMP record. What is GMP-relevant (requested, generated with its SHA-256,
    failed) is written to the audit trail by the services, and LabelPrint rows are audited records.
    """

    kind = models.CharField(max_length=40, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="document_jobs")
    subject_type = models.CharField(max_length=100, blank=True, help_text="app_label.model of what it is about")
    subject_id = models.CharField(max_length=64, blank=True)
    subject_repr = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=20, default="default")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0, help_text="executions started")
    send_count = models.PositiveIntegerField(default=0, help_text="times handed to the broker")
    last_sent_at = models.DateTimeField(null=True, blank=True)
    send_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="last sign of life of a running execution")
    lease_owner = models.CharField(
        max_length=300, blank=True,
        help_text="the execution that holds the job (host, process, task delivery): it alone prints and completes it",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True,
                                            help_text="the holder's lease ends here unless it renews it")
    finished_at = models.DateTimeField(null=True, blank=True)
    output = models.FileField(upload_to="documents/%Y/%m/", blank=True)
    output_name = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    chain_sequence = models.BigIntegerField(null=True, blank=True, help_text="audit chain head printed in the document")
    chain_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "last_sent_at"], name="documents_job_sweep_idx"),
            models.Index(fields=["subject_type", "subject_id"], name="documents_job_subject_idx"),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk}: {self.kind_name}{f' for {self.subject_repr}' if self.subject_repr else ''}"

    @property
    def kind_name(self) -> str:
        """'shipping_label' → 'Shipping label' (a kind is named by what it makes)."""
        return self.kind.replace("_", " ").capitalize()

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)


class LabelKind(models.TextChoices):
    QUARANTINE = "quarantine"
    FINAL = "final"
    SHIPPING = "shipping"


class LabelPrint(AuditedModel):
    """One label issued (an item in a job's output), written in the transaction that marks the job done."""

    job = models.ForeignKey(DocumentJob, on_delete=models.PROTECT, related_name="label_prints")
    template = models.CharField(max_length=40)
    template_version = models.CharField(max_length=20)
    kind = models.CharField(max_length=20, choices=LabelKind.choices)
    output_format = models.CharField(max_length=10)
    subject_type = models.CharField(max_length=100, help_text="what the label belongs to, e.g. batches.cmlot")
    subject_id = models.CharField(max_length=64)
    item_key = models.CharField(max_length=64, help_text="vial serial, carton key or SSCC")
    payload = models.JSONField(default=dict, help_text="the data printed, as rendered")
    copies = models.PositiveIntegerField(default=1)
    printed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    printed_at = models.DateTimeField()
    reprint_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["printed_at", "id"]
        indexes = [models.Index(fields=["subject_type", "subject_id", "template"], name="documents_print_subject_idx")]

    def __str__(self) -> str:
        return f"{self.template} {self.kind} label {self.item_key} ×{self.copies}"


class Disposition(models.TextChoices):
    DESTROYED = "destroyed"
    RETURNED = "returned"


class LabelDisposition(AuditedModel):
    """Labels of one item that were destroyed or returned (211.125): who, how many, which, why.

    One row per item (the labels are named by their item key: vial serial, carton key, SSCC); a reprint writes
    one ``destroyed`` row for the label it replaces (``replaced_by``) in the transaction that records it."""

    subject_type = models.CharField(max_length=100, help_text="what the labels belong to, e.g. batches.cmlot")
    subject_id = models.CharField(max_length=64)
    template = models.CharField(max_length=40)
    kind = models.CharField(max_length=20, choices=LabelKind.choices)
    item_key = models.CharField(max_length=64, help_text="vial serial, carton key or SSCC")
    disposition = models.CharField(max_length=10, choices=Disposition.choices)
    count = models.PositiveIntegerField(default=1)
    reason = models.TextField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    replaced_by = models.ForeignKey(LabelPrint, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="replaced", help_text="the reprint that replaced this label")

    class Meta:
        ordering = ["recorded_at", "id"]
        indexes = [models.Index(fields=["subject_type", "subject_id", "template"],
                                name="documents_disp_subject_idx")]
        constraints = [models.CheckConstraint(condition=models.Q(count__gte=1), name="documents_disp_count_positive")]

    def __str__(self) -> str:
        return f"{self.template} {self.kind} label {self.item_key} ×{self.count} {self.disposition}"
