"""Admin base for GMP records: saves go through the audit services, nothing is deleted,
domain errors show as messages, and a change to a signed/released record asks for a reason."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from cmlims.audit import audited_save
from cmlims.exceptions import ApplicationError


class ReasonForm(forms.ModelForm):
    change_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this change is made (required once the record is released or signed).",
    )


class AuditedModelAdmin(admin.ModelAdmin):
    """Use for every AuditedModel. Subclasses with real workflows override ``save_model`` to call
    their service (which audits); this default is the plain audited save."""

    form = ReasonForm

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # GMP records are voided, never deleted

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        audited_save(obj, actor=request.user, reason=form.cleaned_data.get("change_reason", ""))

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        with transaction.atomic():
            for instance in instances:
                audited_save(instance, actor=request.user, reason=form.cleaned_data.get("change_reason", ""))
        formset.save_m2m()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            # The service refused (rule, role, reason missing): show why, keep the user on the page.
            self.message_user(request, exc.message, level=messages.ERROR)
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())
