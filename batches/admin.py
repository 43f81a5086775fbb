"""Admin for lab staff: every save calls the same services as the API (role, rules, audit), nothing is deleted,
refusals show as messages. List pages select related rows up front: no per-row queries at 100,000 lots."""

from __future__ import annotations

import re
from datetime import UTC

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from batches import documents
from cmlims import roles
from cmlims.admin import (
    AuditedModelAdmin,
    AuditedTabularInline,
    SignatureForm,
    adopt,
    badge,
    page_object,
    quantity,
    readable_error,
    signing_page,
    signing_page_check,
    status_badge,
    status_column,
    timeline_url,
    url_for_each,
)
from cmlims.admin_paging import CappedCountPaginator
from cmlims.audit import object_type_of
from cmlims.documents.models import LabelKind
from cmlims.exceptions import ApplicationError, field_error

from . import models as m
from . import selectors
from .admin_labels import CARTON_SIZE, lot_labels_view
from .drying_page import drying_run_record_view, may_record_run
from .lifecycle import LOT_PIPELINE
from .services import cultures, drying, lots, packaging, products, records, sources

PERFORMED = ("performed_by", "performed_at", "verified_by", "verified_at")


class ServiceAdmin(AuditedModelAdmin):
    """Routes the admin's save to a service: ``create(request, values, reason)`` and
    ``update(request, obj, values, reason)`` (``values`` = the fields the user changed)."""

    show_full_result_count = False  # one COUNT(*) less on big tables
    list_per_page = 50

    def create(self, request, values: dict, reason: str):
        raise NotImplementedError

    def update(self, request, obj, values: dict, reason: str):
        raise NotImplementedError

    def form_values(self, form, *, changed_only: bool) -> dict:
        names = form.changed_data if changed_only else list(form.cleaned_data)
        return {n: form.cleaned_data[n] for n in names if n != "change_reason" and n in form.cleaned_data}

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason", "")
        if change:
            values = self.form_values(form, changed_only=True)
            saved = self.update(request, obj, values, reason) if values else obj
        else:
            saved = self.create(request, self.form_values(form, changed_only=False), reason)
        adopt(obj, saved)

    def void_object(self, request, obj, reason: str):
        return records.record_void(record=obj, actor=request.user, reason=reason)

    def get_actions(self, request):
        # An action that needs a role is offered only to who holds it (never to the superuser, who takes no
        # GMP action): QC and shipping are not shown buttons that answer "needs the role Lab staff".
        actions = super().get_actions(request)
        return {name: spec for name, spec in actions.items() if may_run(request.user, spec[0])}

    def run_for_each(self, request, queryset, label: str, fn) -> None:
        """Apply ``fn`` to each selected row in its own transaction; report successes and refusals."""
        done = 0
        for obj in queryset:
            try:
                fn(obj)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {readable_error(exc, self.model)}", level=messages.ERROR)
        if done:
            self.message_user(request, f"{label}: {done} record(s).", level=messages.SUCCESS)


def may_run(user, action) -> bool:
    needed = getattr(action, "allowed_roles", None)
    if not needed:
        return True
    return not user.is_superuser and roles.has_role(user, *needed)


def for_roles(*needed: str):
    """Mark an admin action as one only these roles may run (``ServiceAdmin.get_actions`` reads it)."""
    def mark(action):
        action.allowed_roles = frozenset(needed)
        return action
    return mark


def formset_done(formset, new=(), changed=()) -> None:
    """Our services saved the inline rows; tell the admin's change message what happened."""
    formset.new_objects = list(new)
    formset.changed_objects = [(obj, []) for obj in changed]
    formset.deleted_objects = []


class VerifyActionMixin:
    @for_roles(roles.LAB_STAFF)
    @admin.action(description="Verify the selected steps (second person)")
    def verify_selected(self, request, queryset):
        self.run_for_each(request, queryset, "Verified",
                          lambda obj: records.step_verify(record=obj, actor=request.user))


# --- master data ----------------------------------------------------------------------------------------


@admin.register(m.Product)
class ProductAdmin(ServiceAdmin):
    list_display = ("name", "gtin", "shelf_life_days", "max_passage", "max_population_doublings",
                    "requires_second_person_verification", "voided_at")
    search_fields = ("name", "=gtin")
    list_filter = ("requires_second_person_verification",)

    def create(self, request, values, reason):
        return products.product_create(actor=request.user, reason=reason, **values)

    def update(self, request, obj, values, reason):
        return products.product_update(product=obj, actor=request.user, reason=reason, **values)

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "limits_in_force_shown")

    @admin.display(description="process limits in force")
    def limits_in_force_shown(self, product):
        if product is None or not product.pk:
            return "—"
        pending = products.product_limits_pending(product)
        link = format_html(' <a href="{}">approve process limits (signature)</a>',
                           reverse("admin:batches_product_limits_approve", args=[product.pk]))
        state = (f"version {product.limits_version}; changed, awaiting approval: {', '.join(pending)}"
                 if pending else f"version {product.limits_version}")
        return format_html("{}{}", state, link)

    def get_urls(self):
        return [path("<path:object_id>/limits/approve/", self.admin_site.admin_view(self.limits_approve_view),
                     name="batches_product_limits_approve"), *super().get_urls()]

    def limits_approve_view(self, request, object_id: str):
        signing_page_check(request)  # a QC officer's signing page: refused before any lookup
        product = page_object(self, request, object_id, "product")
        return signing_page(
            self, request, template="admin/batches/product/limits_approve.html", subject=product,
            title=f"Approve process limits: {product}", meaning="product limits approved",
            sign=lambda **signature: products.product_limits_approve(product=product, actor=request.user,
                                                                     **signature),
            done=lambda approved: f"{approved}: process limits version {approved.limits_version} approved, signed.",
            context={"pending": sorted(products.product_limits_pending(product).items()),
                     "next_version": product.limits_version + 1},
        )


@admin.register(m.StorageLocation)
class StorageLocationAdmin(ServiceAdmin):
    list_display = ("code", "name", "kind", "parent", "temperature_min_c", "temperature_max_c")
    list_select_related = ("parent",)
    search_fields = ("code", "name")
    list_filter = ("kind",)
    autocomplete_fields = ("parent",)

    def create(self, request, values, reason):
        return products.storage_location_create(actor=request.user, reason=reason, **values)

    def update(self, request, obj, values, reason):
        return products.storage_location_update(location=obj, actor=request.user, reason=reason, **values)


class EligibilityForm(SignatureForm):
    """A QC officer's determination: eligible or ineligible, why, on what evidence, signed."""

    eligibility_status = forms.ChoiceField(choices=[(d, d) for d in sources.DETERMINATIONS], label="determination")
    evidence = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}),
                               help_text="the screening and testing records reviewed")
    field_order = ["eligibility_status", "reason", "evidence", "username", "password"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = True


@admin.register(m.CellSource)
class CellSourceAdmin(ServiceAdmin):
    list_display = ("code", "tissue", "collection_date", "consent_status", "eligibility_status", "trace_link")
    search_fields = ("code",)
    list_filter = ("tissue", "consent_status", "eligibility_status")
    list_select_related = ("eligibility_signature",)
    # Eligibility is determined and signed by a QC officer on its own page, never typed on the form.
    readonly_fields = ("eligibility_status", "eligibility_determined_on", "eligibility_determined_by",
                       "eligibility_reason", "eligibility_evidence", "eligibility_signature_shown")

    @admin.display(description="eligibility signature")
    def eligibility_signature_shown(self, source):
        if source is None or not source.pk:
            return "—"
        signature = source.eligibility_signature if source.eligibility_signature_id else None
        link = (format_html(' <a href="{}">determine eligibility (signature)</a>',
                            reverse("admin:batches_cellsource_eligibility", args=[source.pk])))
        return format_html("{}{}", str(signature) if signature else "not determined", link)

    def get_urls(self):
        return [path("<path:object_id>/eligibility/", self.admin_site.admin_view(self.eligibility_view),
                     name="batches_cellsource_eligibility"), *super().get_urls()]

    def eligibility_view(self, request, object_id: str):
        signing_page_check(request)  # a QC officer's signing page: refused before any lookup
        source = page_object(self, request, object_id, "donor")
        return signing_page(
            self, request, template="admin/batches/cellsource/eligibility.html", subject=source,
            title=f"Determine eligibility: {source}", meaning="eligibility determined", form_class=EligibilityForm,
            sign=lambda **determination: sources.donor_eligibility_determine(source=source, actor=request.user,
                                                                             **determination),
            done=lambda determined: f"Donor {determined.code}: eligibility determined "
                                    f"({determined.eligibility_status}), signed.",
        )

    @admin.display(description="trace")
    def trace_link(self, source):
        return format_html('<a href="{}">lots and vials</a>', reverse("donor-trace", args=[source.code]))

    def create(self, request, values, reason):
        return sources.cell_source_create(actor=request.user, reason=reason, **values)

    def update(self, request, obj, values, reason):
        return sources.cell_source_update(source=obj, actor=request.user, reason=reason, **values)


@admin.register(m.CellBank)
class CellBankAdmin(VerifyActionMixin, ServiceAdmin):
    list_display = ("code", "kind", "source", "passage_at_freeze", "frozen_on", "vials_on_hand", "identity",
                    "performed_by", "verified_by")
    list_select_related = ("source", "performed_by", "verified_by")
    search_fields = ("code", "source__code")
    list_filter = ("kind", ("frozen_on", admin.DateFieldListFilter))
    autocomplete_fields = ("source", "parent_bank", "storage_location")
    readonly_fields = PERFORMED
    actions = ["verify_selected"]

    @admin.display(description="identity (ISCT)", boolean=True)
    def identity(self, bank):
        return bank.identity_conforms

    def create(self, request, values, reason):
        return sources.cell_bank_create(actor=request.user, reason=reason, **values)

    def update(self, request, obj, values, reason):
        return sources.cell_bank_update(bank=obj, actor=request.user, reason=reason, **values)


# --- culture and harvest ---------------------------------------------------------------------------------


class PassageInline(AuditedTabularInline):
    model = m.Passage
    extra = 1
    fields = ("passage_number", "seeded_at", "harvested_at", "cells_seeded", "cells_harvested", "viability_percent",
              "confluence_percent", "population_doublings", "cumulative_population_doublings", "performed_by",
              "verified_by")
    readonly_fields = ("population_doublings", "cumulative_population_doublings", "performed_by", "verified_by")
    ordering = ("passage_number",)


class HarvestInline(AuditedTabularInline):
    model = m.Harvest
    extra = 0
    fields = ("sequence", "conditioning_started_at", "conditioning_ended_at", "volume_ml", "hold_temperature_c",
              "performed_by", "verified_by")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # harvests are recorded on their own page (the culture must be in conditioning)


@admin.register(m.Culture)
class CultureAdmin(VerifyActionMixin, ServiceAdmin):
    list_display = ("code", "product", "bank", "status", "started_at", "conditioning_started_at", "performed_by",
                    "verified_by")
    list_select_related = ("product", "bank", "performed_by", "verified_by")
    search_fields = ("code", "bank__code", "bank__source__code")
    list_filter = ("status", "product", ("started_at", admin.DateFieldListFilter))
    autocomplete_fields = ("product", "bank")
    readonly_fields = ("status", "conditioning_started_at", "confluence_at_conditioning_percent", "closed_at",
                       "closed_reason", *PERFORMED)
    inlines = [PassageInline, HarvestInline]
    actions = ["verify_selected", "verify_passages", "start_conditioning"]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "code", "product", "bank") if obj is not None else self.readonly_fields

    def create(self, request, values, reason):
        product, bank = values.pop("product"), values.pop("bank")
        return cultures.culture_create(actor=request.user, product=product, bank=bank, reason=reason, **values)

    def update(self, request, obj, values, reason):
        return cultures.culture_update(culture=obj, actor=request.user, reason=reason, **values)

    def save_formset(self, request, form, formset, change):
        formset_done(formset)
        if formset.model is not m.Passage:
            return  # harvests are shown, not edited, here
        reason = form.cleaned_data.get("change_reason", "")
        fields = set(cultures.PASSAGE_FIELDS)
        new, changed_rows = [], []
        with transaction.atomic():
            for inline_form in formset.forms:
                if not inline_form.has_changed():
                    continue
                values = {k: v for k, v in inline_form.cleaned_data.items() if k in fields}
                if inline_form.instance.pk:
                    changed = {k: values[k] for k in inline_form.changed_data if k in fields}
                    changed_rows.append(cultures.passage_update(passage=inline_form.instance, actor=request.user,
                                                                reason=reason, **changed))
                else:
                    new.append(cultures.passage_record(culture=form.instance, actor=request.user, reason=reason,
                                                       **values))
        formset_done(formset, new, changed_rows)

    @for_roles(roles.LAB_STAFF)
    @admin.action(description="Verify the selected cultures' passages (second person)")
    def verify_passages(self, request, queryset):
        # Passages are rows of the culture's page: the start page's "passages" count leads here.
        self.run_for_each(request, queryset, "Passages verified",
                          lambda culture: records.culture_passages_verify(culture=culture, actor=request.user))

    @for_roles(roles.LAB_STAFF)
    @admin.action(description="Start conditioning (serum-free) — confluence from the latest passage")
    def start_conditioning(self, request, queryset):
        def start(culture):
            latest = culture.passages.filter(voided_at__isnull=True).order_by("-passage_number").first()
            cultures.culture_start_conditioning(culture=culture, actor=request.user,
                                                confluence_percent=latest.confluence_percent if latest else None)

        self.run_for_each(request, queryset, "Conditioning started", start)


@admin.register(m.Harvest)
class HarvestAdmin(VerifyActionMixin, ServiceAdmin):
    list_display = ("__str__", "culture", "conditioning_ended_at", "volume_ml", "hold_temperature_c",
                    "performed_by", "verified_by")
    list_select_related = ("culture", "performed_by", "verified_by")
    search_fields = ("culture__code", "culture__bank__source__code")
    list_filter = (("conditioning_ended_at", admin.DateFieldListFilter), "culture__product")
    autocomplete_fields = ("culture",)
    readonly_fields = ("sequence", *PERFORMED)
    actions = ["verify_selected"]

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "culture") if obj is not None else self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        # The pooling inline's autocomplete offers only harvests with volume left (never a spent one). A harvest
        # is named "<culture>-H<n>" (as printed and listed): that name finds it, in lists and pickers.
        named = re.fullmatch(r"\s*(\S+)-H(\d+)\s*", search_term or "")
        if named:
            queryset, distinct = queryset.filter(culture__code__iexact=named[1], sequence=int(named[2])), False
        else:
            queryset, distinct = super().get_search_results(request, queryset, search_term)
        if _autocomplete_for(request, "harvestcontribution", "harvest"):
            queryset = selectors.harvests_poolable(queryset)
        elif request.path.endswith("/autocomplete/"):
            queryset = queryset.filter(voided_at__isnull=True)
        return queryset, distinct

    def create(self, request, values, reason):
        culture = values.pop("culture")
        return cultures.harvest_record(culture=culture, actor=request.user, reason=reason, **values)

    def update(self, request, obj, values, reason):
        return cultures.harvest_update(harvest=obj, actor=request.user, reason=reason, **values)


# --- lots ------------------------------------------------------------------------------------------------


def _autocomplete_for(request, model_name: str, field_name: str) -> bool:
    """Whether this is the admin's autocomplete for ``model_name.field_name`` (Django names the source field)."""
    return (request.path.endswith("/autocomplete/") and request.GET.get("model_name") == model_name
            and request.GET.get("field_name") == field_name)


class ContributionInline(AuditedTabularInline):
    model = m.HarvestContribution
    extra = 3
    fields = ("harvest", "volume_ml", "added_by", "added_at")
    readonly_fields = ("added_by", "added_at")
    autocomplete_fields = ("harvest",)
    verbose_name = "harvest in the pool"
    verbose_name_plural = "harvests in the pool (volume taken from each)"

    def has_change_permission(self, request, obj=None) -> bool:
        # Rows already pooled are shown read-only (no service edits a volume taken; void the lot instead);
        # harvests can still be added while the lot is pooled and unfiltered.
        return obj is None

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is None or (obj.status == m.LotStatus.POOLED and obj.filtration_performed_by_id is None)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("harvest__culture", "added_by")


FILTRATION_FIELDS = ("filter_pore_size_um", "filter_lot", "filtered_at", "integrity_test_method",
                     "integrity_test_limit_bar", "integrity_test_measured_bar", "volume_filtered_ml")
CONCENTRATION_FIELDS = ("concentration_cutoff_kda", "concentration_factor", "volume_out_ml", "concentrated_at")


def _transition_action(to: str):
    def action(modeladmin, request, queryset):
        modeladmin.run_for_each(request, queryset.order_by("pk"), f"Moved to {m.LotStatus(to).label}",
                                lambda lot: lots.lot_transition(lot=lot, to=to, actor=request.user))

    action.__name__ = f"move_to_{to}"
    # Who may run it is the pipeline's rule (lab staff load the dryer, QC completes QC), never a copy.
    return for_roles(*LOT_PIPELINE.rule(to).roles)(admin.action(description=f"Move to {to.replace('_', ' ')}")(action))


def _verify_lot_action(step: str):
    def action(modeladmin, request, queryset):
        modeladmin.run_for_each(request, queryset, f"{step.capitalize()} verified",
                                lambda lot: lots.lot_step_verify(lot=lot, step=step, actor=request.user))

    action.__name__ = f"verify_{step}"
    return for_roles(roles.LAB_STAFF)(admin.action(description=f"Verify {step} (second person)")(action))


_MORE_DOCUMENT_ACTIONS: dict = {}  # name -> action, added by apps above batches


def _document_action(description: str, request_fn, *allowed: str):
    """Ask for one document job per selected lot (``request_fn(lot, user)``) and link each queued job;
    offered only to the ``allowed`` roles (the service checks them again)."""
    def action(modeladmin, request, queryset):
        for lot in queryset.select_related("product").order_by("pk"):
            try:
                job = request_fn(lot, request.user)
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{lot}: {exc.message}", level=messages.ERROR)
                continue
            link = format_html('<a href="{}">job {}</a>', reverse("admin:documents_documentjob_change",
                                                                   args=[job.pk]), job.pk)
            modeladmin.message_user(request, format_html("{}: {} queued — {}", lot, description, link),
                                    level=messages.SUCCESS)

    action.__name__ = "documents_" + description.lower().replace(" ", "_")
    return for_roles(*allowed)(admin.action(description=description)(action))


def lot_document_action_add(description: str, request_fn, *allowed: str) -> None:
    """Apps above batches (qc: the certificate of analysis) offer their lot documents in the lot admin."""
    action = _document_action(description, request_fn, *allowed)
    _MORE_DOCUMENT_ACTIONS[action.__name__] = action


def _carton_labels(lot: m.CMLot, user):
    kind = LabelKind.FINAL if lot.status == m.LotStatus.RELEASED else LabelKind.QUARANTINE
    return documents.lot_labels_request(lot=lot, actor=user, template="carton", kind=kind,
                                        output_format="pdf", carton_size=CARTON_SIZE,
                                        reason="carton labels from the admin")


LOT_DOCUMENT_ACTIONS = [
    _document_action("Print quarantine labels", lambda lot, user: documents.lot_unlabelled_vial_labels_request(
        lot=lot, kind=LabelKind.QUARANTINE, actor=user), roles.LAB_STAFF),
    _document_action("Print final vial labels", lambda lot, user: documents.lot_unlabelled_vial_labels_request(
        lot=lot, kind=LabelKind.FINAL, actor=user), roles.SHIPPING_COORDINATOR),
    _document_action("Print quarantine labels as ZPL", lambda lot, user: documents.lot_unlabelled_vial_labels_request(
        lot=lot, kind=LabelKind.QUARANTINE, actor=user, output_format="zpl"), roles.LAB_STAFF),
    _document_action("Print final vial labels as ZPL", lambda lot, user: documents.lot_unlabelled_vial_labels_request(
        lot=lot, kind=LabelKind.FINAL, actor=user, output_format="zpl"), roles.SHIPPING_COORDINATOR),
    # Carton labels are quarantine labels (lab staff) until release, final labels (shipping) after.
    _document_action("Print carton labels", _carton_labels, roles.LAB_STAFF, roles.SHIPPING_COORDINATOR),
    _document_action("Generate batch record",
                     lambda lot, user: documents.lot_batch_record_request(lot=lot, actor=user), roles.QC_OFFICER),
    "show_label_reconciliation",
    "print_labels_on_a_printer",
]


class LotLinks:
    """A lot's genealogy, timeline, labels and sign-off links, each URL reversed once for a whole list page
    (``url_for_each``): four reverse() per row were a sixth of the lot list's time (B2)."""

    def __init__(self) -> None:
        self.genealogy = url_for_each("admin:batches_cmlot_genealogy")
        self.timeline = url_for_each("admin:cmlims_timeline", object_type_of(m.CMLot))
        self.labels = url_for_each("admin:batches_cmlot_labels")
        try:  # the sign-off page belongs to qc (which depends on batches): reached by URL name only
            self.signoff = url_for_each("admin:qc_lot_signoff")
        except NoReverseMatch:
            self.signoff = None

    def html(self, lot):
        links = [format_html('<a href="{}">genealogy</a>', self.genealogy(lot.pk)),
                 format_html('<a href="{}">timeline</a>', self.timeline(lot.pk)),
                 format_html('<a href="{}">labels</a>', self.labels(lot.pk))]
        if self.signoff is not None:
            links.append(format_html('<a href="{}">sign-off</a>', self.signoff(lot.lot_number)))
        return format_html(" · ".join(["{}"] * len(links)), *links)


@admin.register(m.CMLot)
class CMLotAdmin(ServiceAdmin):
    # Seven narrow columns fit 1280 px; volumes, yield and times are on the lot's page.
    list_display = ("lot_number", "product", "status_shown", "volumes", "expiry", "release", "links")
    list_select_related = ("product",)
    list_filter = ("status", "product", "on_hold", ("created_at", admin.DateFieldListFilter),
                   ("expiry", admin.DateFieldListFilter))
    search_fields = ("lot_number",)
    search_help_text = "lot number, vial serial or donor code"
    autocomplete_fields = ("product",)
    ordering = ("-id",)
    inlines = [ContributionInline]
    # The unsigned, user-asked status targets of the lot pipeline (signed ones are the sign-off pages).
    actions = [_transition_action(to) for to in LOT_PIPELINE.targets(signed=False)] + [
        _verify_lot_action(step) for step in lots.LOT_STEPS
    ] + LOT_DOCUMENT_ACTIONS
    readonly_fields = (
        "lot_number", "status", "status_changed_at", "on_hold", "hold_reason", "expiry", "volume_in_ml",
        "pooled_by", "pool_verified_by", "pool_verified_at", "filtration_performed_by", "filtration_verified_by",
        "integrity_test_passed", "concentration_performed_by", "concentration_verified_by", "yield_percent",
        "genealogy_link", "release",
    )

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ("product", "pooled_at", "change_reason")})]
        return [
            (None, {"fields": ("lot_number", "product", "status", "status_changed_at", "on_hold", "hold_reason",
                               "expiry", "release", "genealogy_link")}),
            ("Pooling", {"fields": ("pooled_at", "volume_in_ml", "pooled_by", "pool_verified_by",
                                    "pool_verified_at")}),
            ("Filtration (sterile, with integrity test)", {"fields": (*FILTRATION_FIELDS, "integrity_test_passed",
                                                                      "filtration_performed_by",
                                                                      "filtration_verified_by")}),
            ("Concentration", {"fields": (*CONCENTRATION_FIELDS, "yield_percent", "concentration_performed_by",
                                          "concentration_verified_by")}),
            ("Change", {"fields": ("change_reason",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return (*self.readonly_fields, "product", "pooled_at")
        return self.readonly_fields

    def get_search_results(self, request, queryset, search_term):
        if _autocomplete_for(request, "lyophilisationrun", "lot"):
            queryset = selectors.lots_awaiting_drying(queryset)  # no released or rejected lot for a dryer
        if not search_term.strip():
            return queryset, False
        return queryset.filter(selectors.lot_search_q(search_term)), False

    def get_changelist_instance(self, request):
        # The sign-off signatures (and whether a signed field changed since) of the whole page at once, and
        # the row links' URLs reversed once for the page.
        changelist = super().get_changelist_instance(request)
        signoffs = selectors.lot_signoffs(changelist.result_list)
        links = LotLinks()
        for lot in changelist.result_list:
            lot._signoffs = signoffs.get(lot.pk, [])
            lot._links = links
        return changelist

    @admin.display(description="status", ordering="status")
    def status_shown(self, lot):
        shown = status_badge(lot)
        return format_html("{} {}", shown, badge("on_hold", "on hold")) if lot.on_hold else shown

    @admin.display(description="volume in → out")
    def volumes(self, lot):
        text = f"{quantity(lot.volume_in_ml)} → {quantity(lot.volume_out_ml, 'mL')}" if lot.volume_out_ml \
            else quantity(lot.volume_in_ml, "mL")
        return f"{text} ({quantity(lot.yield_percent)} %)" if lot.yield_percent is not None else text

    @admin.display(description="sign-off")
    def release(self, lot):
        """Printed name, UTC time and meaning of each sign-off signature (11.50: release, rejection, recall),
        flagged if a signed field changed since."""
        if not lot.pk:
            return "—"
        signatures = (lot._signoffs if hasattr(lot, "_signoffs")  # a list page: the stored checks
                      else selectors.lot_signoffs([lot], live=True).get(lot.pk, []))
        if not signatures:
            return "—"
        shown = []
        for signature in signatures:
            text = format_html("{} · {} · {}", signature.printed_name,
                               signature.signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                               signature.meaning)
            status = getattr(signature, "current_status", None)
            if status and status.changed_after_signing:
                text = format_html('{} <strong style="color:#ba2121">changed after signing: {}</strong>', text,
                                   ", ".join(status.changed_fields))
            shown.append(text)
        return format_html("<br>".join(["{}"] * len(shown)), *shown)

    @admin.display(description="")
    def links(self, lot):
        urls = getattr(lot, "_links", None) or LotLinks()
        return urls.html(lot)

    @admin.display(description="genealogy")
    def genealogy_link(self, lot):
        return self.links(lot) if lot.pk else "—"

    # saving: pooling happens in save_related (it needs the inline rows); steps go to their services

    def save_model(self, request, obj, form, change):
        if not change:
            return  # the lot is created with its harvests in save_related (one transaction, one service)
        reason = form.cleaned_data.get("change_reason", "")
        changed = set(form.changed_data)
        values = form.cleaned_data
        lot = obj
        if changed & set(FILTRATION_FIELDS):
            lot = lots.lot_record_filtration(lot=lot, actor=request.user, reason=reason,
                                             **{f: values.get(f) for f in FILTRATION_FIELDS})
        if changed & set(CONCENTRATION_FIELDS):
            lot = lots.lot_record_concentration(lot=lot, actor=request.user, reason=reason,
                                                **{f: values.get(f) for f in CONCENTRATION_FIELDS})
        adopt(obj, lot)

    def save_related(self, request, form, formsets, change):
        reason = form.cleaned_data.get("change_reason", "")
        rows = [
            (f.cleaned_data["harvest"], f.cleaned_data["volume_ml"])
            for formset in formsets for f in formset.forms
            if f.has_changed() and not f.instance.pk and f.cleaned_data.get("harvest")
        ]
        for formset in formsets:
            formset_done(formset)
        if not change:
            lot = lots.lot_pool(
                product=form.cleaned_data["product"], pooled_at=form.cleaned_data.get("pooled_at"),
                actor=request.user, reason=reason,
                contributions=[lots.Contribution(harvest_id=h.pk, volume_ml=v) for h, v in rows],
            )
            adopt(form.instance, lot)
            return
        for harvest, volume in rows:
            lots.lot_contribution_add(lot=form.instance, harvest_id=harvest.pk, volume_ml=volume, actor=request.user,
                                      reason=reason)

    def void_object(self, request, obj, reason: str):
        return lots.lot_void(lot=obj, actor=request.user, reason=reason)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR not in request.GET:  # a popup offers no actions (as Django's own)
            actions.update({name: (fn, name, fn.short_description) for name, fn in _MORE_DOCUMENT_ACTIONS.items()
                            if may_run(request.user, fn)})
        return actions

    @for_roles(roles.LAB_STAFF, roles.QC_OFFICER)  # who labels the lot, and who checks it before release
    @admin.action(description="Show label reconciliation")
    def show_label_reconciliation(self, request, queryset):
        for lot in queryset.order_by("pk"):
            rec = documents.lot_label_reconciliation(lot)
            rows = "; ".join(f"{r.detail}, {r.reprints} reprints"
                             + (f", unexpected {', '.join(r.unexpected)}" if r.unexpected else "") for r in rec.rows)
            self.message_user(
                request, f"{lot}: {rec.expected_items} vials; {rows or 'no labels issued'}"
                + ("" if rec.balanced else " — DOES NOT RECONCILE"),
                level=messages.INFO if rec.balanced else messages.WARNING,
            )

    @for_roles(roles.LAB_STAFF, roles.SHIPPING_COORDINATOR)
    @admin.action(description="Print labels on a printer, or record destroyed labels…")
    def print_labels_on_a_printer(self, request, queryset):
        """One lot at a time: its labels page, where the printer is chosen (only those whose stock fits)."""
        lots_chosen = list(queryset.order_by("pk")[:2])
        if len(lots_chosen) != 1:
            self.message_user(request, "Choose one lot: its labels page offers the printers.", level=messages.ERROR)
            return None
        return HttpResponseRedirect(reverse("admin:batches_cmlot_labels", args=[lots_chosen[0].pk]))

    def get_urls(self):
        return [
            path("<int:pk>/genealogy/", self.admin_site.admin_view(self.genealogy_view),
                 name="batches_cmlot_genealogy"),
            path("<int:pk>/labels/", self.admin_site.admin_view(self.labels_view), name="batches_cmlot_labels"),
            *super().get_urls(),
        ]

    def labels_view(self, request, pk: int):
        return lot_labels_view(self, request, pk)

    def genealogy_view(self, request, pk: int):
        """Read-only: donor → bank → cultures → harvests → lot → freeze-drying → packaging → vials."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        lot = selectors.lot_detail_queryset().filter(pk=pk).first()
        if lot is None:
            raise Http404(f"No lot {pk}")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Genealogy of lot {lot.lot_number}",
            "opts": self.opts,
            "lot": lot,
            "genealogy": selectors.lot_genealogy(lot),
            "release": selectors.lot_releases([lot], selectors.lot_signoffs([lot], live=True)).get(lot.pk),
            "timeline_url": timeline_url(lot),
            "change_url": reverse("admin:batches_cmlot_change", args=[lot.pk]),
        }
        return TemplateResponse(request, "admin/batches/cmlot/genealogy.html", context)


# --- freeze-drying and packaging -------------------------------------------------------------------------


class PhaseInline(AuditedTabularInline):
    model = m.LyophilisationPhase
    extra = 3
    max_num = 3
    fields = ("phase", "shelf_temperature_setpoint_c", "shelf_temperature_actual_c", "chamber_pressure_setpoint_mbar",
              "chamber_pressure_actual_mbar", "started_at", "ended_at", "duration_minutes")
    readonly_fields = ("duration_minutes",)

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or not obj.is_complete


RUN_COMPLETION_FIELDS = ("ended_at", "end_of_primary_drying_method", "end_of_primary_drying_at",
                         "end_of_primary_drying_evidence", "stoppering_method", "stoppering_pressure_mbar",
                         "stoppered_at", "alarms", "alarm_count")


@admin.register(m.LyophilisationRun)
class LyophilisationRunAdmin(VerifyActionMixin, ServiceAdmin):
    list_display = ("run_number", "lot", "dryer", "recipe", "vials_loaded", "fill_volume_ml", "started_at",
                    "completed_at", "alarm_count", "performed_by", "verified_by")
    list_select_related = ("lot", "performed_by", "verified_by")
    search_fields = ("run_number", "lot__lot_number", "dryer")
    list_filter = ("dryer", ("started_at", admin.DateFieldListFilter))
    autocomplete_fields = ("lot",)
    readonly_fields = ("completed_by", "completed_at", *PERFORMED)
    inlines = [PhaseInline]
    actions = ["verify_selected"]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_urls(self):
        record = self.admin_site.admin_view(self.record_view)
        return [
            path("record/", record, name="batches_lyophilisationrun_record_new"),
            path("<int:pk>/record/", record, name="batches_lyophilisationrun_record"),
            *super().get_urls(),
        ]

    def record_view(self, request, pk: int | None = None):
        return drying_run_record_view(self, request, pk)

    def changelist_view(self, request, extra_context=None):
        tools = [(reverse("admin:batches_lyophilisationrun_record_new"), "Record a run on one page")] \
            if may_record_run(request.user) else []
        return super().changelist_view(request, {"object_tools": tools, **(extra_context or {})})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not obj.is_complete and obj.voided_at is None and may_record_run(request.user):
            context["object_tools"] = [(reverse("admin:batches_lyophilisationrun_record", args=[obj.pk]),
                                        "Record phases and completion")]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_fieldsets(self, request, obj=None):
        loading = ("run_number", "lot", "dryer", "recipe", "recipe_version", "vials_loaded", "fill_volume_ml",
                   "started_at", "performed_at")
        if obj is None:
            return [("Load the dryer (moves the lot to freeze-drying)", {"fields": (*loading, "change_reason")})]
        return [
            ("Loading", {"fields": (*loading, "performed_by", "verified_by", "verified_at")}),
            ("Completion (fill in once all three phases are recorded)",
             {"fields": (*RUN_COMPLETION_FIELDS, "completed_by", "completed_at")}),
            ("Change", {"fields": ("change_reason",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        fixed = ("run_number", "lot", "vials_loaded", "performed_at")
        done = RUN_COMPLETION_FIELDS if obj.is_complete else ()
        return (*self.readonly_fields, *fixed, *done)

    def create(self, request, values, reason):
        lot = values.pop("lot")
        return drying.lyophilisation_run_start(lot=lot, actor=request.user, reason=reason, **values)

    def update(self, request, obj, values, reason):
        completion = {k: values.pop(k) for k in list(values) if k in RUN_COMPLETION_FIELDS}
        run = obj
        if values:
            run = drying.lyophilisation_run_update(run=obj, actor=request.user, reason=reason, **values)
        if completion:
            # save_formset has not run yet: completion is applied after the phases (see save_related).
            request._cmlims_run_completion = completion
        return run

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        completion = getattr(request, "_cmlims_run_completion", None)
        if completion:
            values = {k: form.cleaned_data.get(k) for k in RUN_COMPLETION_FIELDS}
            values["alarm_count"] = values.get("alarm_count") or 0
            values["alarms"] = values.get("alarms") or ""
            run = drying.lyophilisation_run_complete(run=form.instance, actor=request.user,
                                                     reason=form.cleaned_data.get("change_reason", ""), **values)
            adopt(form.instance, run)

    def save_formset(self, request, form, formset, change):
        reason = form.cleaned_data.get("change_reason", "")
        fields = set(drying.PHASE_FIELDS)
        new = []
        for inline_form in formset.forms:
            if not inline_form.has_changed():
                continue
            if inline_form.instance.pk:
                # Phases have no edit service: refuse rather than drop the change silently.
                raise field_error(
                    f"phases[{inline_form.instance.phase}]",
                    "a recorded phase is not edited: void it with a reason and record it again",
                )
            data = inline_form.cleaned_data
            new.append(drying.lyophilisation_phase_record(run=form.instance, phase=data["phase"], actor=request.user,
                                                          reason=reason,
                                                          **{k: v for k, v in data.items() if k in fields}))
        formset_done(formset, new)


@admin.register(m.PackagingRun)
class PackagingRunAdmin(VerifyActionMixin, ServiceAdmin):
    list_display = ("run_number", "lot", "vials_packaged", "vials_rejected", "ended_at", "storage_location",
                    "performed_by", "verified_by")
    list_select_related = ("lot", "storage_location", "performed_by", "verified_by")
    search_fields = ("run_number", "lot__lot_number")
    list_filter = (("ended_at", admin.DateFieldListFilter),)
    autocomplete_fields = ("lot", "storage_location")
    fields = ("run_number", "lot", "started_at", "ended_at", "vials_packaged", "vials_rejected", "storage_location",
              *PERFORMED, "change_reason")
    readonly_fields = PERFORMED
    actions = ["verify_selected"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return (*self.readonly_fields, "run_number", "lot", "started_at", "ended_at", "vials_packaged",
                "vials_rejected", "storage_location")

    def create(self, request, values, reason):
        return packaging.packaging_record(lot=values["lot"], actor=request.user, reason=reason,
                                          run_number=values["run_number"], started_at=values["started_at"],
                                          ended_at=values["ended_at"], vials_packaged=values["vials_packaged"],
                                          vials_rejected=values.get("vials_rejected") or 0,
                                          storage_location=values["storage_location"])

    def update(self, request, obj, values, reason):
        raise ApplicationError("a packaging run is not edited; void the record or open a deviation")


@admin.register(m.Vial)
class VialAdmin(ServiceAdmin):
    paginator = CappedCountPaginator  # 5 million vials at ten years: counted up to 10,000
    list_display = ("serial", "lot", "status_shown", "location")
    list_select_related = ("lot", "storage_location", "packaging_run")
    search_fields = ("=serial", "lot__lot_number")
    list_filter = ("status", "lot__product")
    autocomplete_fields = ("storage_location",)
    readonly_fields = ("serial", "lot", "packaging_run", "sequence", "status", "destroyed_reason")
    fields = ("serial", "lot", "packaging_run", "sequence", "status", "storage_location", "destroyed_reason",
              "change_reason")

    def has_add_permission(self, request) -> bool:
        return False  # vials are created by packaging

    status_shown = status_column()

    @admin.display(description="location", ordering="storage_location__code")
    def location(self, vial):
        return selectors.vial_location_text(vial)

    def update(self, request, obj, values, reason):
        return packaging.vial_move(vial=obj, storage_location=values["storage_location"], actor=request.user,
                                   reason=reason)
