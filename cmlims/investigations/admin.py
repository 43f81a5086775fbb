"""Investigations in the admin: QC officers record progress and close with a conclusion (through services).
Lab staff and QC raise deviations here ("Add"); a QC officer closes one with a root cause, an impact
assessment and a signature."""

from django import forms
from django.contrib import admin

from cmlims.admin import AuditedModelAdmin, adopt, person_column, status_column
from cmlims.esign.services import signature_current_status, signed_content_note
from cmlims.investigations.deviations import (
    deviation_close,
    deviation_raise,
    deviation_subject_get,
    deviation_subject_types,
)
from cmlims.investigations.models import Investigation, Kind, Status
from cmlims.investigations.services import investigation_close, investigation_update


class InvestigationForm(forms.ModelForm):
    close = forms.BooleanField(required=False, help_text="Close the investigation with the conclusion above "
                                                         "(an OOS investigation is signed \"investigation closed\").")
    username = forms.CharField(required=False, help_text="your own user name (to sign the closure of an OOS "
                                                         "investigation)")
    password = forms.CharField(required=False, widget=forms.PasswordInput, strip=False)
    change_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Investigation
        fields = ("phase", "root_cause", "related_lots_checked", "conclusion", "product_disposition")


class DeviationRaiseForm(forms.ModelForm):
    """Raise a deviation: against which record (type and id), what happened."""

    subject_type = forms.ChoiceField(choices=())
    subject_id = forms.CharField(help_text="the id of the lot, harvest, run or shipment")

    class Meta:
        model = Investigation
        fields = ("title", "details")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["subject_type"].choices = [(k, k.replace("_", " ")) for k in sorted(deviation_subject_types())]
        self.fields["details"].required = True


class DeviationCloseForm(forms.ModelForm):
    """Close a deviation: root cause, impact assessment, and the QC officer's two signature components."""

    close = forms.BooleanField(required=False, help_text="Close the deviation, signed \"deviation closed\".")
    username = forms.CharField(required=False, help_text="your own user name (to sign the closure)")
    password = forms.CharField(required=False, widget=forms.PasswordInput, strip=False)
    change_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Investigation
        fields = ("root_cause", "impact_assessment", "conclusion")


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
                       "closed_by", "closed_at", "closing_signature_shown")

    @admin.display(description="closing signature")
    def closing_signature_shown(self, obj) -> str:
        signature = obj.closing_signature if obj and obj.closing_signature_id else None
        if signature is None:
            return "—"
        return f"{signature} ({signed_content_note(signature_current_status(signature, obj))})"

    def has_add_permission(self, request) -> bool:
        # "Add" raises a deviation (lab staff and QC hold the add permission; the service checks the role);
        # OOS and excursion investigations are opened by the rule that found them.
        return super().has_add_permission(request) and not request.user.is_superuser

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = DeviationRaiseForm
        elif obj.kind == Kind.DEVIATION:
            kwargs["form"] = DeviationCloseForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("subject_type", "subject_id", "title", "details")
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        if obj.status == Status.CLOSED:
            return [*self.readonly_fields, "phase", "root_cause", "related_lots_checked", "conclusion",
                    "product_disposition", "impact_assessment"]
        if obj.kind == Kind.DEVIATION:
            return [*self.readonly_fields, "phase", "related_lots_checked", "product_disposition"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            subject = deviation_subject_get(data["subject_type"], data["subject_id"])
            adopt(obj, deviation_raise(subject=subject, actor=request.user, title=data["title"],
                                       details=data["details"]))
            return
        if obj.kind == Kind.DEVIATION:
            if data.get("close"):
                adopt(obj, deviation_close(investigation=obj, actor=request.user, username=data.get("username", ""),
                                           password=data.get("password", ""), root_cause=data.get("root_cause", ""),
                                           impact_assessment=data.get("impact_assessment", ""),
                                           conclusion=data.get("conclusion", "")))
            else:
                investigation_update(investigation=obj, actor=request.user, root_cause=data.get("root_cause"),
                                     reason=data.get("change_reason", ""))
            return
        progress = {"root_cause": data.get("root_cause"), "related_lots_checked": data.get("related_lots_checked")}
        if data.get("close"):
            adopt(obj, investigation_close(investigation=obj, actor=request.user, conclusion=data.get("conclusion", ""),
                                           product_disposition=data.get("product_disposition") or "",
                                           username=data.get("username", ""), password=data.get("password", ""),
                                           **progress))
        else:
            investigation_update(investigation=obj, actor=request.user, phase=data.get("phase"),
                                 product_disposition=data.get("product_disposition"),
                                 reason=data.get("change_reason", ""), **progress)
