"""The guarded base models: saving, bulk writes and deletes outside the audit services raise."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cmlims.audit.guard import UnauditedWrite, write_allowed


class AuditedQuerySet(models.QuerySet):
    """Unsafe paths raise: writes go through the audit services, and nothing is deleted."""

    def update(self, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{self.model.__name__}: use cmlims.audit.audited_queryset_update")
        return super().update(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{self.model.__name__}: use cmlims.audit.audited_bulk_create")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{self.model.__name__}: use cmlims.audit.audited_bulk_update")
        return super().bulk_update(objs, fields, *args, **kwargs)

    def update_or_create(self, *args, **kwargs):
        raise UnauditedWrite(f"{self.model.__name__}: use the audit services")

    def delete(self):
        raise UnauditedWrite(f"{self.model.__name__}: GMP records are voided, never deleted")

    delete.queryset_only = True


class AuditedModel(models.Model):
    """Base for every GMP record: saving or deleting outside the audit services raises."""

    objects = AuditedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not write_allowed():
            raise UnauditedWrite(f"{type(self).__name__}.save(): use cmlims.audit.audited_save (or a service)")
        return super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise UnauditedWrite(f"{type(self).__name__}: GMP records are voided, never deleted")

    def change_requires_reason(self) -> bool:
        """Override: True once the record is released or signed (Annex 11 §9)."""
        return False


class VoidableModel(AuditedModel):
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="+"
    )
    void_reason = models.TextField(blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None


def audited_models() -> list[type[models.Model]]:
    """Every concrete audited model in the app registry (the enforcement test walks these)."""
    from django.apps import apps

    return [m for m in apps.get_models() if issubclass(m, AuditedModel)]


def _refuse_cascade_delete(sender, instance, **kwargs) -> None:
    raise UnauditedWrite(f"{sender.__name__}: GMP records are voided, never deleted (not even by a cascade)")


def _guard_audited_model(sender, **kwargs) -> None:
    """For every concrete audited model: its base manager is the guarded one too (``_base_manager``
    would otherwise be a plain Manager whose ``update()`` skips the trail), and a cascade delete
    from another model's row raises through ``pre_delete``."""
    if not issubclass(sender, AuditedModel) or sender._meta.abstract:
        return
    if sender._meta.base_manager_name is None:
        sender._meta.base_manager_name = sender._meta.default_manager.name
    models.signals.pre_delete.connect(
        _refuse_cascade_delete, sender=sender, weak=False, dispatch_uid=f"cmlims_no_delete_{sender._meta.label}"
    )


models.signals.class_prepared.connect(_guard_audited_model, dispatch_uid="cmlims_guard_audited_model")
