"""Investigations in the admin: QC officers record progress and close with a conclusion (through services)."""

from django import forms
from django.contrib import admin

from cmlims.admin import AuditedModelAdmin, person_column, status_column
from cmlims.investigations.models import Investigation, Status
from cmlims.investigations.services import investigation_close, investigation_update


class InvestigationForm(forms.ModelForm):
    close = forms.BooleanField(required=False, help_text="Close the investigation with the conclusion above.")
    change_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Investigation
        fields = ("phase", "root_cause", "related_lots_checked", "conclusion", "product_disposition")


@admin.register(Investigation)
class InvestigationAdmin(AuditedModelAdmin):
    form = InvestigationForm
    list_display = ("__str__", "kind", "status_shown", "subject_repr", "opened_by_name", "opened_at")
    status_shown = status_column()
    opened_by_name = person_column("opened_by", "opened by")
    list_filter = ("status", "kind", "phase")
    search_fields = ("title", "subject_repr", "object_id")
    list_select_related = ("opened_by",)
    readonly_fields = ("kind", "title", "details", "subject_repr", "status", "opened_by", "opened_at",
                       "closed_by", "closed_at")

    def has_add_permission(self, request) -> bool:
        return False  # opened by the rule that found the problem (failing result, excursion)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status == Status.CLOSED:
            return [*self.readonly_fields, "phase", "root_cause", "related_lots_checked", "conclusion",
                    "product_disposition"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        progress = {"root_cause": data.get("root_cause"), "related_lots_checked": data.get("related_lots_checked")}
        if data.get("close"):
            investigation_close(investigation=obj, actor=request.user, conclusion=data.get("conclusion", ""),
                                product_disposition=data.get("product_disposition") or "", **progress)
        else:
            investigation_update(investigation=obj, actor=request.user, phase=data.get("phase"),
                                 product_disposition=data.get("product_disposition"),
                                 reason=data.get("change_reason", ""), **progress)
