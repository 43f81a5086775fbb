"""Admin: printers (lab staff add and change them through the audited services) and print outcomes (read-only)."""

from django.contrib import admin

from cmlims.admin import AuditedModelAdmin, ReadOnlyAdmin
from cmlims.printing import services
from cmlims.printing.models import PrintDispatch, Printer


@admin.register(Printer)
class PrinterAdmin(AuditedModelAdmin):
    list_display = ("name", "location", "kind", "address", "stock_width_mm", "stock_height_mm", "stock_material",
                    "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "location", "address")
    fields = services.EDITABLE

    def save_model(self, request, obj, form, change):
        values = {n: form.cleaned_data[n] for n in services.EDITABLE if n in form.cleaned_data}
        reason = form.cleaned_data.get("change_reason", "")
        if change:
            saved = services.printer_update(printer=obj.pk, actor=request.user, reason=reason,
                                            **{n: values[n] for n in form.changed_data if n in values})
        else:
            saved = services.printer_create(actor=request.user, **values)
        obj.pk, obj._state = saved.pk, saved._state

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disable instead: print outcomes keep pointing at the printer


@admin.register(PrintDispatch)
class PrintDispatchAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "job", "printer", "status", "labels_confirmed", "attempts", "error", "sent_at")
    list_filter = ("status", "printer")
    list_select_related = ("job", "printer")
