"""QC in the admin: specifications (drafted, signed into force), results (entered, imported, approved with a
signature), the lot sign-off page. Every write goes through qc.services; pages only parse and render."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from batches.admin import lot_document_action_add
from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.admin import (
    AuditedModelAdmin,
    AuditedTabularInline,
    ReadOnlyAdmin,
    SignatureForm,
    form_error_show,
    person_column,
    signing_page,
    signing_page_check,
    status_column,
)
from cmlims.admin_paging import CappedCountPaginator
from cmlims.exceptions import ApplicationError
from qc import selectors
from qc.documents import lot_coa_request
from qc.models import LotAuditReview, QCResult, Specification, SpecItem, SpecStatus
from qc.review import TRAIL_HEADER, review_by_exception, trail_csv, trail_lines, trail_pdf
from qc.services.imports import results_import
from qc.services.results import invalidation_conditions, result_approve, result_enter, result_invalidate
from qc.services.signoff import MEANINGS, lot_sign_off
from qc.services.specs import (
    ITEM_FIELDS,
    spec_item_add,
    spec_item_update,
    specification_approve,
    specification_create,
    specification_update,
)
from qc.signed_content import lot_signature_status

SIGN_TEMPLATE = "admin/qc/sign.html"  # a specification's or a result's signing page


# --- specifications ---------------------------------------------------------------------------------------


class SpecItemInline(AuditedTabularInline):
    model = SpecItem
    fields = ITEM_FIELDS
    extra = 0

    def has_change_permission(self, request, obj=None) -> bool:
        return (obj is None or obj.status == SpecStatus.DRAFT) and super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return (obj is None or obj.status == SpecStatus.DRAFT) and super().has_add_permission(request, obj)


@admin.register(Specification)
class SpecificationAdmin(AuditedModelAdmin):
    list_display = ("title", "product", "version", "status", "effective_from", "approved_by")
    list_filter = ("status", "product")
    list_select_related = ("product", "approval")
    inlines = [SpecItemInline]
    fields = ("product", "title", "notes", "version", "status", "effective_from", "approved_by")
    readonly_fields = ("version", "status", "effective_from", "approved_by")

    @admin.display(description="approved by")
    def approved_by(self, spec):
        return str(spec.approval) if spec.approval_id else "—"

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return (*self.readonly_fields, "product", *(("title", "notes") if obj.status != SpecStatus.DRAFT else ()))
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            specification_update(specification=obj, actor=request.user, title=obj.title, notes=obj.notes,
                                 reason=form.cleaned_data.get("change_reason", ""))
        else:
            created = specification_create(product=obj.product, title=obj.title, notes=obj.notes, actor=request.user)
            obj.pk, obj.version, obj._state.adding = created.pk, created.version, False

    def save_formset(self, request, form, formset, change):
        for item in formset.save(commit=False):
            values = {name: getattr(item, name) for name in ITEM_FIELDS}
            if item.pk:
                spec_item_update(item=item, actor=request.user, **values)
            else:
                spec_item_add(specification=form.instance, actor=request.user, **values)

    def get_urls(self):
        return [path("<int:pk>/approve/", self.admin_site.admin_view(self.approve_view),
                     name="qc_specification_approve"), *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.status == SpecStatus.DRAFT:
            self.message_user(request, format_html('Draft: <a href="{}">sign it into force</a>.',
                                                   reverse("admin:qc_specification_approve", args=[obj.pk])))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def approve_view(self, request, pk: int):
        signing_page_check(request)
        spec = get_object_or_404(Specification, pk=pk)
        return signing_page(
            self, request, template=SIGN_TEMPLATE,
            subject=spec, title=f"Approve {spec}", meaning="specification approved",
            sign=lambda **signature: specification_approve(specification=spec, actor=request.user, **signature),
            done=f"{spec} is in force.", context={"items": spec.items.order_by("order", "id")},
        )


# --- results ------------------------------------------------------------------------------------------------


class ResultForm(forms.ModelForm):
    """A new result; optionally a retest of, or a correction (with a reason) superseding, an earlier one."""

    retest_of_result = forms.ModelChoiceField(QCResult.objects.all(), required=False, widget=forms.NumberInput,
                                       help_text="id of the result this one repeats (the original stays valid)")
    corrects_result = forms.ModelChoiceField(QCResult.objects.all(), required=False, widget=forms.NumberInput,
                                        help_text="id of a wrongly recorded result this one corrects")
    correction_note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                      label="reason", help_text="required for a correction, and for a late entry "
                                                                "(tested more than 24 h ago)")

    class Meta:
        model = QCResult
        fields = ("lot", "spec_item", "value_entered", "unit_entered", "analyst", "instrument", "tested_at",
                  "attachment")


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV: lot_number, test, value, unit, analyst, tested_at (ISO 8601 with "
                                     "offset), instrument, and reason (optional: required for a row tested more "
                                     "than 24 h ago). All rows or none are imported; the file is kept as received.")


@admin.register(QCResult)
class QCResultAdmin(AuditedModelAdmin):
    form = ResultForm
    paginator = CappedCountPaginator  # 1.5 million results at ten years: counted up to 10,000, once
    show_full_result_count = False
    # Fits 1280 px: source, unit column and approval time are on the result's page.
    list_display = ("lot", "test", "value_shown", "verdict", "status_shown", "analyst_name", "tested_at",
                    "approver_name")
    list_filter = ("status", "passed", "source", "spec_item__test")
    search_fields = ("=lot__lot_number", "spec_item__test", "instrument")
    list_select_related = ("lot", "spec_item", "analyst", "approved_by")
    autocomplete_fields = ("lot",)
    readonly_fields = ("value", "qualitative_value", "passed", "status", "supersedes", "correction_reason",
                       "retest_of", "entered_by", "entered_at", "approved_by", "approved_at", "approval",
                       "invalidated_by", "invalidated_at", "invalidation_reason", "invalidation",
                       "attachment_sha256", "source", "imported_from", "actions_links")

    @admin.display(description="actions")
    def actions_links(self, result):
        if not result.pk:
            return "—"
        links = [format_html('<a href="{}">lot sign-off page</a>',
                             reverse("admin:qc_lot_signoff", args=[result.lot.lot_number]))]
        if result.approved_at is None and result.status == "valid":
            links.insert(0, format_html('<a href="{}">approve (signature)</a>',
                                        reverse("admin:qc_qcresult_approve", args=[result.pk])))
        if result.status == "valid":
            links.insert(0, format_html('<a href="{}">invalidate (signature)</a>',
                                        reverse("admin:qc_qcresult_invalidate", args=[result.pk])))
        if result.passed is False and result.status == "valid":
            # An OOS result is retested as a new result linked to it: the add form opens with lot, test and link.
            query = urlencode({"lot": result.lot_id, "spec_item": result.spec_item_id, "retest_of_result": result.pk,
                               "unit_entered": result.unit_entered, "instrument": result.instrument})
            links.append(format_html('<a href="{}?{}">enter a retest</a>', reverse("admin:qc_qcresult_add"), query))
        return format_html(" · ".join(["{}"] * len(links)), *links)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()  # the add form takes retest/correction links

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*ResultForm.Meta.fields, "retest_of_result", "corrects_result", "correction_note"]
        return [*ResultForm.Meta.fields, *self.readonly_fields]

    @admin.display(description="test", ordering="spec_item__test")
    def test(self, result):
        return result.spec_item.test

    @admin.display(description="value", ordering="value_entered")
    def value_shown(self, result):
        return f"{result.value_entered} {result.unit_entered}".strip()

    status_shown = status_column()
    analyst_name = person_column("analyst", "analyst")
    approver_name = person_column("approved_by", "approved by")

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # never overwritten: corrections and retests are new results

    def save_model(self, request, obj, form, change):
        d = form.cleaned_data
        created = result_enter(lot=d["lot"], spec_item=d["spec_item"], value=d["value_entered"],
                               unit=d["unit_entered"], analyst=d["analyst"], tested_at=d["tested_at"],
                               instrument=d["instrument"], attachment=d.get("attachment"), actor=request.user,
                               retest_of=d.get("retest_of_result"), supersedes=d.get("corrects_result"),
                               correction_reason=d.get("correction_note") or "")
        obj.pk, obj._state.adding = created.pk, False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name="qc_qcresult_import"),
            path("<int:pk>/approve/", view(self.approve_view), name="qc_qcresult_approve"),
            path("<int:pk>/invalidate/", view(self.invalidate_view), name="qc_qcresult_invalidate"),
            path("signoff/<str:lot_number>/", view(self.signoff_view), name="qc_lot_signoff"),
            path("signoff/<str:lot_number>/trail/", view(self.trail_view), name="qc_lot_trail"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"import_url": reverse("admin:qc_qcresult_import"), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def import_view(self, request):
        if not roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.INTEGRATION):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        rows = []
        if request.method == "POST" and form.is_valid():
            try:
                upload = form.cleaned_data["file"]
                original = results_import(data=upload.read(), actor=request.user, file_name=upload.name)
            except ApplicationError as exc:
                rows = exc.extra.get("rows", [])
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"{original.result_count} results imported; the file is kept as "
                                           f"{original.original.name} (SHA-256 {original.sha256}).",
                                  level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:qc_qcresult_changelist"))
        return TemplateResponse(request, "admin/qc/import.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Import QC results",
            "form": form, "rows": rows[:500], "more": max(0, len(rows) - 500),
        })

    def approve_view(self, request, pk: int):
        signing_page_check(request)
        result = get_object_or_404(QCResult.objects.select_related("lot", "spec_item", "analyst"), pk=pk)
        return signing_page(
            self, request, template=SIGN_TEMPLATE,
            subject=result, title=f"Approve result {result.pk}", meaning="result approved",
            sign=lambda **signature: result_approve(result=result, actor=request.user, **signature),
            done=f"Result {result.pk} approved.", context={"result": result},
        )

    def invalidate_view(self, request, pk: int):
        """A QC officer invalidates a result: reason and signature ("result invalidated"); the page says
        beforehand what stops it (own result, already invalidated, lot closed)."""
        signing_page_check(request)
        result = get_object_or_404(QCResult.objects.select_related("lot", "spec_item", "analyst"), pk=pk)
        return signing_page(
            self, request, template=SIGN_TEMPLATE,
            subject=result, title=f"Invalidate result {result.pk}", meaning="result invalidated",
            sign=lambda **signature: result_invalidate(result=result, actor=request.user, **signature),
            done=f"Result {result.pk} invalidated: it no longer counts for the lot.",
            context={"result": result, "refusals": invalidation_conditions(result, request.user),
                     "reason_required": True},
        )

    def signoff_lot(self, lot_number: str) -> CMLot:
        lot = CMLot.objects.select_related("product").filter(lot_number=lot_number).first()
        if lot is None:
            raise Http404(f"No lot {lot_number}")
        return lot

    def signoff_view(self, request, lot_number: str):
        """Checklist, the audit trail since the last review by exception, meaning, reason, user name, password."""
        signing_page_check(request)
        context = signoff_context(self, request, self.signoff_lot(lot_number))
        if isinstance(context, HttpResponse):
            return context
        return TemplateResponse(request, "admin/qc/signoff.html", context)

    def trail_view(self, request, lot_number: str):
        """The lot's whole audit trail, paged; ``?format=csv`` or ``?format=pdf`` downloads all of it."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        lot = self.signoff_lot(lot_number)
        kind = request.GET.get("format")
        if kind == "csv":
            response = HttpResponse(trail_csv(selectors.lot_audit_entries(lot)), content_type="text/csv")
        elif kind == "pdf":
            response = HttpResponse(trail_pdf(lot=lot, entries=selectors.lot_audit_entries(lot), user=request.user),
                                    content_type="application/pdf")
        else:
            return TemplateResponse(request, "admin/qc/trail.html", trail_context(self, request, lot))
        response["Content-Disposition"] = f'attachment; filename="audit-trail-{lot.lot_number}.{kind}"'
        return response


class SignOffForm(SignatureForm):
    action = forms.ChoiceField(choices=[(to, str(meaning)) for to, meaning in MEANINGS.items()],
                               label="meaning", widget=forms.RadioSelect)
    reviewed_through = forms.IntegerField(widget=forms.HiddenInput)
    confirm_review = forms.BooleanField(
        required=False, label="I have reviewed the lot's audit trail shown above (Annex 11 §9)")

    def __init__(self, *args, meanings: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [(to, str(MEANINGS[to])) for to in meanings]


# What a lot in each status may still be signed to: a released lot only recalled; a finished one nothing.
SIGNABLE = {LotStatus.RELEASED: [LotStatus.RECALLED], LotStatus.REJECTED: [], LotStatus.RECALLED: [],
            LotStatus.EXPIRED: []}
TRAIL_PAGE = 100


def signoff_context(model_admin, request, lot: CMLot) -> dict | HttpResponse:
    """The page's data, or the redirect after a signature (a reload signs nothing twice)."""
    from batches.lifecycle import unmet_conditions

    meanings = SIGNABLE.get(lot.status, [LotStatus.RELEASED, LotStatus.REJECTED])
    form = SignOffForm(request.POST or None, meanings=meanings, initial={
        "username": request.user.get_username(), "action": meanings[0] if meanings else None,
        "reviewed_through": selectors.lot_audit_since_review(lot)["latest_sequence"]})
    if request.method == "POST" and meanings and form.is_valid():
        d = form.cleaned_data
        try:
            signature = lot_sign_off(lot=lot, to=d["action"], actor=request.user, username=d["username"],
                                     password=d["password"], reason=d["reason"],
                                     audit_reviewed_through=d["reviewed_through"] if d["confirm_review"] else None)
        except ApplicationError as exc:
            form_error_show(form, exc)
        else:
            model_admin.message_user(request, f"Lot {lot.lot_number} {MEANINGS[d['action']]} (signed by "
                                              f"{signature.printed_name}).",
                                     level=messages.SUCCESS)
            return HttpResponseRedirect(request.path)
    objects = selectors.lot_audit_objects(lot)
    since = selectors.lot_audit_since_review(lot, objects)
    review_conditions, _ = selectors.audit_review_conditions(lot, request.user, None, required=True,
                                                             objects=objects)
    signatures = [(s, lot_signature_status(lot, s)) for s in selectors.lot_signoff_signatures(lot)]
    results = list(selectors.lot_results(lot))
    counting = {r.pk for r in selectors.counting_results(lot, results).values()}
    conditions = (unmet_conditions(lot, LotStatus.RELEASED, request.user) + review_conditions) if meanings else []
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Sign-off: lot {lot.lot_number}",
        "lot": lot,
        "conditions": conditions,
        "review": review_by_exception(since["entries"]),
        "previous_review": since["previous_review"],
        "results": [(r, r.pk in counting) for r in results],
        "investigations": list(selectors.lot_investigations(lot)),
        "signatures": signatures,
        "form": form if meanings else None,
        "trail_url": reverse("admin:qc_lot_trail", args=[lot.lot_number]),
    }


def trail_context(model_admin, request, lot: CMLot) -> dict:
    from django.core.paginator import Paginator

    entries = selectors.lot_audit_entries(lot)
    page = Paginator(entries, TRAIL_PAGE).get_page(request.GET.get("page"))
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Full audit trail: lot {lot.lot_number}",
        "lot": lot,
        "page": page,
        "lines": trail_lines(page.object_list),
        "header": TRAIL_HEADER,
        "signoff_url": reverse("admin:qc_lot_signoff", args=[lot.lot_number]),
    }


@admin.register(LotAuditReview)
class LotAuditReviewAdmin(ReadOnlyAdmin):
    list_display = ("lot", "reviewer", "reviewed_at", "reviewed_from", "reviewed_through", "entries_reviewed")
    list_select_related = ("lot", "reviewer")
    search_fields = ("=lot__lot_number",)


# The lot admin (batches) offers the certificate of analysis with its own document actions.
lot_document_action_add("Generate certificate of analysis",
                        lambda lot, user: lot_coa_request(lot=lot, actor=user), roles.QC_OFFICER,
                        roles.SHIPPING_COORDINATOR)
