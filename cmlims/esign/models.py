"""Part 11 electronic signatures: who signed what, meaning, when, and a hash of what was signed."""

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from cmlims.audit import AuditedModel


class Meaning(models.TextChoices):
    RESULT_APPROVED = "result approved"
    RESULT_INVALIDATED = "result invalidated"
    SPECIFICATION_APPROVED = "specification approved"
    RELEASED = "released"
    REJECTED = "rejected"
    RECALLED = "recalled"
    SHIPPED = "shipped"
    RECEIVED = "received"
    LOGGER_FILE_REPLACED = "logger file replaced"
    DEVIATION_CLOSED = "deviation closed"
    INVESTIGATION_CLOSED = "investigation closed"
    ELIGIBILITY_DETERMINED = "eligibility determined"
    PRODUCT_LIMITS_APPROVED = "product limits approved"


class Signature(AuditedModel):
    """One electronic signature, permanently linked to its record (11.70) by content hash and chain anchor.

    ``signed_fields`` is the versioned list of field names covered; ``content_sha256`` is the SHA-256 of the
    canonical JSON of those fields' values at signing time; recomputing it later shows "changed after signing".
    """

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    subject = GenericForeignKey("content_type", "object_id")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signatures")
    printed_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=40, choices=Meaning.choices)
    reason = models.TextField(blank=True)
    signed_at = models.DateTimeField()
    field_list_version = models.CharField(max_length=40)
    signed_fields = models.JSONField(default=list)
    content = models.JSONField(default=dict, help_text="the canonical content that was signed")
    content_sha256 = models.CharField(max_length=64)
    chain_sequence = models.BigIntegerField(help_text="audit chain head at signing (anchor)")
    chain_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["signed_at", "id"]
        indexes = [models.Index(fields=["content_type", "object_id", "meaning"], name="esign_subject_idx")]

    def __str__(self) -> str:
        return f"{self.printed_name} — {self.meaning} — {self.signed_at:%Y-%m-%d %H:%M:%S} UTC"


class SigningFailure(models.Model):
    """Consecutive wrong-password count per user for the signing lockout (11.300). Not a GMP record:
    every failure is also an audit entry, which is the record."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    consecutive = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.consecutive} failures"


class SignatureCheck(models.Model):
    """The last answer of "changed after signing?" for one signature, so a list page of signed records reads
    it instead of rebuilding every signature's content (B1s: ~4 ms of CPU per signed lot). Not a GMP record: it
    is recomputable from the signature and the records at any time, and the record pages and printouts always
    recompute it.

    ``stale`` is set, and ``generation`` bumped, in the transaction of every audited write to a record the
    signature covers (``cmlims.esign.services``: the signing app registers which records those are); a
    refresh stores its answer only if ``generation`` is still the one it read before reading the records, so
    an answer computed from content older than the newest write is never stored. Written by
    ``cmlims.esign.services`` only; a nightly sweep recomputes every check (a change outside the services
    writes no audit entry and so marks nothing stale)."""

    signature = models.OneToOneField(Signature, on_delete=models.PROTECT, primary_key=True,
                                     related_name="content_check")
    # The signature's subject id and field list prefix (which names the subject's kind), copied: write paths
    # mark checks stale by subject id without joining the signatures.
    subject_id = models.CharField(max_length=64)
    scope = models.CharField(max_length=40, help_text="the field list prefix whose checker answers it")
    stale = models.BooleanField(default=True)
    generation = models.BigIntegerField(default=0)
    changed_after_signing = models.BooleanField(default=False)
    changed_fields = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    checked_through = models.BigIntegerField(null=True, blank=True, help_text="audit chain head when checked")

    class Meta:
        indexes = [
            models.Index(fields=["scope", "subject_id"], name="esign_check_subject_idx"),
            models.Index(fields=["signature"], name="esign_check_stale_idx", condition=models.Q(stale=True)),
        ]

    def __str__(self) -> str:
        state = "stale" if self.stale else ("changed" if self.changed_after_signing else "unchanged")
        return f"check of signature {self.signature_id}: {state}"
