from django.core.validators import MinValueValidator
from django.db import models

from cmlims.audit import AuditedModel, VoidableModel


class FixtureRecord(VoidableModel):
    name = models.CharField(max_length=40, unique=True)
    quantity = models.IntegerField(default=0, validators=[MinValueValidator(0)])
    released = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name

    def change_requires_reason(self) -> bool:
        return self.released


class FixtureSample(AuditedModel):
    record = models.ForeignKey(FixtureRecord, on_delete=models.PROTECT, related_name="samples")
    label = models.CharField(max_length=40)
    value = models.DecimalField(max_digits=8, decimal_places=3, null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.record.name}/{self.label}"  # reads the parent: bulk paths must not query per row

    def change_requires_reason(self) -> bool:
        return self.record.released
