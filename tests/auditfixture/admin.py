from django.contrib import admin

from cmlims.admin import AuditedModelAdmin, AuditedTabularInline

from .models import FixtureRecord, FixtureSample


class FixtureSampleInline(AuditedTabularInline):
    model = FixtureSample
    extra = 0
    superuser_writes = True  # a test-only model: the audit tests drive it as the superuser


@admin.register(FixtureRecord)
class FixtureRecordAdmin(AuditedModelAdmin):
    list_display = ("name", "quantity", "released")
    fields = ("name", "quantity", "released", "change_reason")
    inlines = [FixtureSampleInline]
    superuser_writes = True
