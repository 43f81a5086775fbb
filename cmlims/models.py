"""Core records shared by every app: the audit trail and API tokens.

Signatures, investigations and document jobs arrive with their issues (``cmlims/models`` grows
into a package when it passes one screenful).
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from cmlims.audit import Action, AuditedModel, AuditedQuerySet, UnauditedWrite, write_allowed


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise UnauditedWrite("the audit trail is append-only")

    def delete(self):
        raise UnauditedWrite("the audit trail is append-only")

    def bulk_update(self, *args, **kwargs):
        raise UnauditedWrite("the audit trail is append-only")

    def bulk_create(self, objs, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite("audit entries are appended by cmlims.audit only")
        return super().bulk_create(objs, *args, **kwargs)


class AuditEntry(models.Model):
    """One append-only, HMAC-chained entry of the audit trail: the record of truth."""

    sequence = models.BigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(db_index=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    username = models.CharField(max_length=150, editable=False)
    action = models.CharField(max_length=32, choices=Action.CHOICES, db_index=True, editable=False)
    object_type = models.CharField(max_length=100, editable=False)
    object_id = models.CharField(max_length=64, editable=False)
    object_repr = models.CharField(max_length=200, blank=True, editable=False)
    changes = models.JSONField(default=dict, blank=True, editable=False)
    reason = models.TextField(blank=True, editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    # A late entry: the step it records happened more than CMLIMS_LATE_ENTRY_HOURS before it was entered
    # (the reason says why). Covered by the chain hash; the review page lists these first.
    late_entry = models.BooleanField(default=False, db_default=False, db_index=True, editable=False)
    occurred_at = models.DateTimeField(null=True, blank=True, editable=False,
                                       help_text="when the recorded step happened (late entries)")
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]
        indexes = [
            models.Index(fields=["object_type", "object_id", "sequence"], name="audit_object_idx"),
            # the admin's user filter and search by object id (any type) without a full scan
            models.Index(fields=["username", "sequence"], name="audit_username_idx"),
            models.Index(fields=["object_id"], name="audit_object_id_idx"),
            # the trail of one record type, newest first (migration 0010 builds it CONCURRENTLY)
            models.Index(fields=["object_type", "sequence"], name="audit_type_seq_idx"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id} by {self.username}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise UnauditedWrite("the audit trail is append-only")
        if not write_allowed():
            raise UnauditedWrite("audit entries are appended by cmlims.audit only")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise UnauditedWrite("the audit trail is append-only")


class AuditCheckpoint(models.Model):
    """The chain head, copied every few minutes by a beat task (``cmlims.audit_checkpoint``).

    Signatures and documents anchor the chain whenever they are made; a checkpoint anchors it when
    nothing is signed for a while, so cutting off the newest entries is caught too. ``mac`` is an
    HMAC over the checkpoint itself, so a forged checkpoint cannot bless a forged chain.
    """

    sequence = models.BigIntegerField(editable=False)
    hash = models.CharField(max_length=64, editable=False)
    at = models.DateTimeField(default=timezone.now, editable=False)
    mac = models.CharField(max_length=64, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-sequence"]
        get_latest_by = "sequence"

    def __str__(self) -> str:
        return f"checkpoint at #{self.sequence} ({self.at:%Y-%m-%d %H:%M} UTC)"

    def save(self, *args, **kwargs):
        if not self._state.adding or not write_allowed():
            raise UnauditedWrite("audit checkpoints are appended by cmlims.anchors only")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise UnauditedWrite("audit checkpoints are append-only")


def _token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(AuditedQuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())


class ApiToken(AuditedModel):
    """An expiring API token. Only its SHA-256 is stored; the raw key is shown once at issue."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False, help_text="first characters, to tell tokens apart")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    audit_exclude = ("digest",)
    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"token {self.prefix}… for {self.user}"

    @staticmethod
    def new_key() -> tuple[str, str]:
        raw = secrets.token_hex(24)
        return raw, _token_digest(raw)

    @staticmethod
    def digest_of(raw: str) -> str:
        return _token_digest(raw)

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class LoginLockQuerySet(AuditedQuerySet):
    def open(self):
        return self.filter(ended_at__isnull=True)


class LoginLock(AuditedModel):
    """A login lock of one user name or one client address (django-axes keeps the count in the cache; this
    row keeps the lock's life in the record, so that its end is written to the trail whether it is cleared
    or runs out). Written by ``cmlims.logins`` only, each change with its audit entry."""

    class Subject(models.TextChoices):
        USERNAME = "username", "user name"
        IP_ADDRESS = "ip_address", "client address"

    class End(models.TextChoices):
        OPEN = "", "still locked"
        EXPIRED = "expired", "ran out"
        CLEARED = "cleared", "cleared early"

    subject = models.CharField(max_length=16, choices=Subject.choices)
    value = models.CharField(max_length=150, help_text="the locked user name or client address")
    failures = models.PositiveIntegerField(help_text="failed logins counted when it locked")
    locked_at = models.DateTimeField()
    locked_until = models.DateTimeField(help_text="when the lock runs out unless cleared before")
    ended_at = models.DateTimeField(null=True, blank=True)
    end = models.CharField(max_length=8, choices=End.choices, blank=True, default=End.OPEN)

    objects = LoginLockQuerySet.as_manager()

    class Meta:
        verbose_name = "login lock"
        constraints = [
            models.UniqueConstraint(fields=["subject", "value"], condition=models.Q(ended_at__isnull=True),
                                    name="login_lock_one_open_per_subject"),
            models.CheckConstraint(condition=models.Q(ended_at__isnull=True, end="")
                                   | (models.Q(ended_at__isnull=False) & ~models.Q(end="")),
                                   name="login_lock_end_with_its_time"),
        ]
        indexes = [models.Index(fields=["locked_until"], condition=models.Q(ended_at__isnull=True),
                                name="login_lock_open_by_end")]

    def __str__(self) -> str:
        return f"login lock of {self.get_subject_display()} {self.value}"
