"""Admin base for GMP records and the audit trail's own pages.

- ``AuditedModelAdmin``: saves go through the audit services, nothing is deleted (void with a reason
  instead), domain errors show as messages, a change to a released/signed record asks for a reason,
  and "History" shows the chained audit entries of the object with old → new values.
- ``AuditEntryAdmin``: the trail, read-only, filterable by object type, user, action and time, searchable
  by object id/repr; plus the timeline of any object and everything registered under it
  (``/admin/cmlims/auditentry/timeline/<object_type>/<id>/``, URL name ``admin:cmlims_timeline``).
- Users and groups: no deletion of users (deactivate; Part 11 user ids are never reused), history from the trail.
"""

import re
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import quote as url_quote

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import display_for_field, label_for_field, lookup_field
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, strip_tags
from django.utils.http import RFC3986_SUBDELIMS
from django.utils.text import capfirst
from django.utils.translation import gettext

from cmlims import exports, roles
from cmlims.admin_filters import AccountFilter, IndexedValuesFilter
from cmlims.admin_paging import AuditTrailPaginator, IdsFirstPaginator
from cmlims.audit import audited_save, audited_void, object_type_of
from cmlims.context import current_request
from cmlims.exceptions import ApplicationError
from cmlims.models import ApiToken, AuditCheckpoint, AuditEntry, LoginLock
from cmlims.timeline import object_history, timeline_for, timeline_registered
from cmlims.verification import audit_chain_verify

TIMELINE_PAGE = 200
EXPONENT = re.compile(r"^-?\d(\.\d+)?E\+\d+$")


# --- presentation helpers ----------------------------------------------------------------------------


def change_rows(entry: AuditEntry, model=None) -> list[tuple[str, object, object]]:
    """(field label, old, new) for display; non-diff payloads (logins, memberships) as (key, "", value)."""
    labels = {}
    if model is not None:
        for field in model._meta.concrete_fields:
            labels[field.attname] = str(field.verbose_name)
    rows = []
    for key, value in sorted((entry.changes or {}).items()):
        label = labels.get(key, key.replace("_", " "))
        if isinstance(value, list) and len(value) == 2:
            rows.append((label, *(as_entered(v) for v in value)))
        else:
            rows.append((label, "", value))
    return rows


# Which badge colour a status or flag value wears; its text is always shown beside it.
BADGE_TONES = {
    "good": {"released", "received", "closed", "approved", "pass", "passed", "done", "available", "in_force",
             "valid", "usable"},
    "bad": {"rejected", "recalled", "expired", "cancelled", "failed", "fail", "destroyed", "voided", "excursion",
            "not_usable", "receipt_on_hold"},
    "wait": {"on_hold", "open", "draft", "queued", "packaged", "qc_complete", "allocated", "superseded"},
    "busy": {"pooled", "freeze_drying", "packed", "shipped", "delivered", "running", "conditioning", "started"},
}
TONE_OF = {value: tone for tone, values in BADGE_TONES.items() for value in values}


def badge(value: str, text: str | None = None):
    """A coloured badge carrying its text (static ``cmlims/admin.css``)."""
    tone = TONE_OF.get(value, "")
    css = f"cm-badge cm-badge--{tone}" if tone else "cm-badge"
    return format_html('<span class="{}">{}</span>', css, text if text is not None else value.replace("_", " "))


def status_badge(obj, field: str = "status"):
    """The choice's human label in a badge (``get_<field>_display``)."""
    value = getattr(obj, field)
    return badge(value, getattr(obj, f"get_{field}_display")()) if value else "—"


def quantity(value, unit: str = "") -> str:
    """A decimal as entered, without padding zeros or exponent: 540 mL, 0.22 µm (not 540.00 or 5.4E+2)."""
    if value is None:
        return "—"
    return f"{Decimal(value).normalize():f} {unit}".strip()


def person(user) -> str:
    """A user by printed name, never a link (a link to the user admin is a 403 for everyone but the admin)."""
    if user is None:
        return "—"
    return user.get_full_name() or user.get_username()


class NamedReadonlyField(helpers.AdminReadonlyField):
    """A read-only foreign key on any change page (and inline): a person by printed name, a record by its name,
    linked only when the reader may open the target. Django's own field links every foreign key, so a user
    field is a link to the user admin: a 403 for everyone but the administrator. Installed for the whole admin
    by ``CmlimsAdminConfig.ready`` (Django offers no hook per site)."""

    def get_admin_url(self, remote_field, remote_obj):
        model = remote_field.model
        text = person(remote_obj) if model is get_user_model() else str(remote_obj)
        site = self.model_admin.admin_site if self.model_admin is not None else None
        target = site._registry.get(model) if site is not None else None
        request = current_request()
        if target is None or request is None or not target.has_view_permission(request, remote_obj):
            return text
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[remote_obj.pk],
                          current_app=site.name)
        except NoReverseMatch:
            return text
        return format_html('<a href="{}">{}</a>', url, text)


def status_column(field: str = "status", description: str = "status"):
    """A list column showing ``field`` as a badge: ``status_shown = status_column()`` on the admin."""
    @admin.display(description=description, ordering=field)
    def column(modeladmin, obj):
        return status_badge(obj, field)
    return column


def person_column(field: str, description: str):
    """A list column naming the user in ``field`` by printed name (``list_select_related`` brings the user)."""
    @admin.display(description=description, ordering=f"{field}__last_name")
    def column(modeladmin, obj):
        return person(getattr(obj, field))
    return column


class BadgeMedia:
    css = {"all": ("cmlims/admin.css",)}


def readable_error(exc: ApplicationError, model=None) -> str:
    """The refusal as a person reads it: each field named by its label ("Conditioning ended at"), not by its
    attribute name (``conditioning_ended_at``)."""
    fields = exc.extra.get("fields") or {}
    if not fields or model is None:
        return exc.message
    labels = {f.name: str(f.verbose_name) for f in model._meta.get_fields() if hasattr(f, "verbose_name")}
    if not set(fields) & set(labels):
        return exc.message  # an inline row ("contributions[0].volume_ml") is named as the service put it
    return "; ".join(
        f"{capfirst(labels.get(name, name))}: {' '.join(str(m) for m in problems)}"
        if name != "non_field_errors" else " ".join(str(m) for m in problems)
        for name, problems in fields.items()
    )


def as_entered(value):
    """The audit payload writes whole decimals in exponent form (540 → "5.4E+2"): show them as entered."""
    if isinstance(value, str) and EXPONENT.match(value):
        return quantity(value)
    return value


def model_for(object_type: str):
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):
        return None


def admin_change_url(object_type: str, object_id: str) -> str:
    model = model_for(object_type)
    if model is None or not object_id:
        return ""
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[object_id])
    except NoReverseMatch:
        return ""


def timeline_url(obj) -> str:
    return reverse("admin:cmlims_timeline", args=[object_type_of(obj), obj.pk])


_URL_MARKER = "8151831512"  # digits: a value the int, str and path converters all accept
_URL_SAFE = RFC3986_SUBDELIMS + "/~:@"  # what reverse() leaves unquoted in a path


def url_for_each(viewname: str, *args) -> Callable[[object], str]:
    """``reverse(viewname, args=[*args, value])`` for many values at the price of one reverse: a list page
    links every row, and reverse() walks the URL resolver each time. The URL is reversed once around a marker
    and each value, quoted as reverse() quotes it, takes its place (equality tested). For values the URL's
    converter accepts (pks, generated lot numbers): reverse() would refuse a "/" in a ``str`` segment, this does
    not check. Raises NoReverseMatch when the view has no such URL."""
    head, _, tail = reverse(viewname, args=[*args, _URL_MARKER]).rpartition(_URL_MARKER)
    return lambda value: f"{head}{url_quote(str(value), safe=_URL_SAFE)}{tail}"


def audit_entry_rows(entries, *, first_seen: bool = False) -> list[dict]:
    """Entries prepared for the history/timeline tables (no queries: everything is on the entry)."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for entry in entries:
        key = (entry.object_type, entry.object_id)
        rows.append({
            "entry": entry,
            "changes": change_rows(entry, model_for(entry.object_type)),
            "object_url": admin_change_url(entry.object_type, entry.object_id),
            # Marks entries that change an object after its first entry (the batch record prints them).
            "later_change": first_seen and key in seen and entry.action not in {"created"},
        })
        seen.add(key)
    return rows


class AuditHistoryMixin:
    """"History" shows the chained audit entries of the object (field diffs), not Django's LogEntry."""

    object_history_template = "admin/cmlims/audit_history.html"

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id}")
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        entries = object_history(obj)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Audit trail: {obj}",
            "subtitle": None,
            "opts": self.opts,
            "object": obj,
            "rows": audit_entry_rows(entries),
            "timeline_url": timeline_url(obj) if timeline_registered(obj) else "",
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.object_history_template, context)


# --- the base for GMP records ------------------------------------------------------------------------


def adopt(target, saved) -> None:
    """Make the admin's form instance the row the service wrote (pk, computed fields) for the redirect."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


class ReasonForm(forms.ModelForm):
    change_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why this change is made (required once the record is released or signed).",
    )

    def clean(self):
        cleaned = super().clean()
        # self.instance still holds the stored values here (the form's values are applied after clean()).
        instance = self.instance
        needs = getattr(instance, "change_requires_reason", None)
        if instance.pk and needs and needs() and not (cleaned.get("change_reason") or "").strip():
            self.add_error("change_reason", "A reason is required to change a record that has been released or signed.")
        return cleaned


class VoidForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text="Why this record is voided.")


def list_rows(modeladmin, request, queryset) -> tuple[list[str], list[list[str]]]:
    """The list's columns as a person sees them (badges and links as their text)."""
    names = [n for n in modeladmin.get_list_display(request) if n != "action_checkbox"]
    header = [strip_tags(str(label_for_field(n, modeladmin.model, modeladmin, return_attr=False))) for n in names]
    rows = []
    for obj in queryset:
        row = []
        for name in names:
            field, attr, value = lookup_field(name, obj, modeladmin)
            shown = display_for_field(value, field, "") if field is not None else value
            row.append(strip_tags(str(shown if shown is not None else "")))
        rows.append(row)
    return header, rows


def _export(kind: str):
    def action(modeladmin, request, queryset):
        header, rows = list_rows(modeladmin, request, queryset)
        name = f"{modeladmin.opts.model_name}-{timezone.now():%Y%m%d-%H%M}"
        if kind == "csv":
            response = HttpResponse(exports.rows_csv(header, rows), content_type="text/csv; charset=utf-8")
        else:
            response = HttpResponse(
                exports.rows_xlsx(header, rows, title=str(modeladmin.opts.verbose_name_plural)),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = f'attachment; filename="{name}.{kind}"'
        return response

    action.__name__ = f"export_{kind}"
    return admin.action(description=f"Export the selected rows as {kind.upper()}")(action)


EXPORT_ACTIONS = {fn.__name__: fn for fn in (_export("csv"), _export("xlsx"))}


class ExportMixin:
    """Every admin list exports the selected rows (or all, with "select all") as CSV and XLSX."""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR not in request.GET:
            actions.update({name: (fn, name, fn.short_description) for name, fn in EXPORT_ACTIONS.items()})
        return actions


class CountLastChangeList(ChangeList):
    """The admin's list, whose first page reads one row more than it shows before anything is counted: when the
    rows fit on one page (a search by vial serial finds one lot; a short filtered list) that read is the
    whole answer and no ``COUNT(*)`` runs; when they do not, the count follows and the page is not read again
    (the same two queries as Django's list). Other pages, "show all" and editable lists are Django's."""

    def get_results(self, request):
        if self.page_num != 1 or self.show_all or self.list_editable:
            return super().get_results(request)
        per_page = self.list_per_page
        paginator = self.model_admin.get_paginator(request, self.queryset, per_page)
        rows = list(self.queryset[: per_page + 1])
        if len(rows) <= per_page:
            paginator.count = len(rows)  # the paginator's cached count: nothing left to count
        self.result_count = result_count = paginator.count
        self.show_full_result_count = self.model_admin.show_full_result_count
        self.full_result_count = self.root_queryset.count() if self.show_full_result_count else None
        self.show_admin_actions = not self.show_full_result_count or bool(self.full_result_count)
        self.result_list = rows[:per_page]
        self.can_show_all = result_count <= self.list_max_show_all
        self.multi_page = result_count > per_page
        self.paginator = paginator


class PlannedRowsMixin:
    """The list page's rows by ``cmlims.admin_rows`` (Django's cells, planned once per page): unless the admin
    names its own template, Django's per-model and per-app ones are still looked up first, then ours, which
    extends the stock page (a model's own template extends ours)."""

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.change_list_template is None:
            opts = model._meta
            self.change_list_template = [f"admin/{opts.app_label}/{opts.model_name}/change_list.html",
                                         f"admin/{opts.app_label}/change_list.html", "admin/cmlims/change_list.html"]


class AuditedModelAdmin(PlannedRowsMixin, ExportMixin, AuditHistoryMixin, admin.ModelAdmin):
    """Use for every AuditedModel. Subclasses with real workflows override ``save_model`` to call
    their service (which audits); this default is the plain audited save. ``void_object`` is the hook
    the "Void" page calls (default: ``audited_void``)."""

    form = ReasonForm
    paginator = IdsFirstPaginator
    change_form_template = "admin/cmlims/audited_change_form.html"
    Media = BadgeMedia
    # The superuser manages users and takes no GMP action: on GMP records it reads, and is offered no add,
    # change or void form (the services would refuse the save anyway). Only a non-GMP admin sets this.
    superuser_writes = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # GMP records are voided, never deleted

    def get_changelist(self, request, **kwargs):
        return CountLastChangeList

    def action_checkbox(self, obj):
        # The stock column renders a CheckboxInput through the form renderer's template for every row (a
        # fifth of a 50-row list page): the same markup, formatted directly (equality tested).
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           helpers.ACTION_CHECKBOX_NAME, str(obj.pk),
                           format_html(gettext("Select this object for an action - {}"), str(obj)))

    def has_add_permission(self, request, *args) -> bool:
        return superuser_may_write(self, request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None) -> bool:
        return superuser_may_write(self, request) and super().has_change_permission(request, obj)

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
            self.message_user(request, readable_error(exc, self.model), level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_void"] = self.can_void(request, obj)
            context["timeline_url"] = timeline_url(obj) if timeline_registered(obj) else ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- voiding

    def can_void(self, request, obj) -> bool:
        return hasattr(obj, "voided_at") and obj.voided_at is None and self.has_change_permission(request, obj)

    def void_object(self, request, obj, reason: str):
        return audited_void(obj, actor=request.user, reason=reason)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_void"
        return [
            path("<path:object_id>/void/", self.admin_site.admin_view(self.void_view), name=name),
            *super().get_urls(),
        ]

    def void_view(self, request, object_id):
        if not self.has_change_permission(request):
            raise PermissionDenied  # before the lookup: a refusal says nothing about which records exist
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id}")
        if not self.can_void(request, obj):
            raise PermissionDenied
        form = VoidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                self.void_object(request, obj, form.cleaned_data["reason"])
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"{obj} was voided.", level=messages.SUCCESS)
                change_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Void {obj}",
            "opts": self.opts,
            "object": obj,
            "form": form,
        }
        return TemplateResponse(request, "admin/cmlims/void.html", context)


def superuser_may_write(model_admin, request) -> bool:
    return getattr(model_admin, "superuser_writes", False) or not request.user.is_superuser


class _AuditedInlineMixin:
    can_delete = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request, obj=None) -> bool:
        return superuser_may_write(self, request) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return superuser_may_write(self, request) and super().has_change_permission(request, obj)


class AuditedTabularInline(_AuditedInlineMixin, admin.TabularInline):
    pass


class AuditedStackedInline(_AuditedInlineMixin, admin.StackedInline):
    pass


class SignatureForm(forms.Form):
    """The two signature components, every time (11.200(a)), plus the reason: every signing page uses it."""

    username = forms.CharField(help_text="your own user name")
    password = forms.CharField(widget=forms.PasswordInput, strip=False)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


def form_error_show(form: forms.Form, exc: ApplicationError) -> None:
    """A service's refusal on the form: each named field at its field, the conditions (or the message) on top."""
    fields = exc.extra.get("fields") or {}
    for name, problems in fields.items():
        form.add_error(name if name in form.fields else None, "; ".join(problems))
    for condition in exc.extra.get("conditions") or []:
        form.add_error(None, condition["detail"])
    if not fields and not exc.extra.get("conditions"):
        form.add_error(None, exc.message)


def page_role_required(request, *needed: str) -> None:
    """A custom admin page belongs to the roles ``needed`` (the superuser takes no GMP action): anyone else gets
    403 first, before the page looks its record up (a refusal says nothing about which records exist)."""
    if request.user.is_superuser or not roles.has_role(request.user, *needed):
        raise PermissionDenied


def page_object(model_admin, request, object_id: str, what: str):
    """A custom page's record, after its role check: 404 for an unknown id, 403 if the reader may not view it."""
    obj = model_admin.model.objects.filter(pk=object_id).first() if object_id.isdigit() else None
    if obj is None:
        raise Http404(f"No {what} with id {object_id}")
    if not model_admin.has_view_permission(request, obj):
        raise PermissionDenied
    return obj


def signing_page_check(request) -> None:
    """Signing pages belong to QC officers (the superuser signs nothing)."""
    page_role_required(request, roles.QC_OFFICER)


def signing_page(model_admin, request, *, subject, title: str, meaning: str, sign: Callable[..., object],
                 done: str | Callable[[object], str], template: str, context: dict | None = None,
                 form_class: type[SignatureForm] = SignatureForm) -> HttpResponse:
    """The signing page of one record: the signature form (``form_class``), ``sign(**cleaned_data)`` on a valid
    POST, a refusal shown on the form, back to the record's change page when signed with the message ``done``
    (or ``done(what sign returned)``). The templates render the form with admin/cmlims/_sign_form.html."""
    signing_page_check(request)
    form = form_class(request.POST or None, initial={"username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        try:
            signed = sign(**form.cleaned_data)
        except ApplicationError as exc:
            form_error_show(form, exc)
        else:
            model_admin.message_user(request, done(signed) if callable(done) else done, level=messages.SUCCESS)
            opts = model_admin.opts
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[subject.pk]))
    return TemplateResponse(request, template, {
        **model_admin.admin_site.each_context(request), "opts": model_admin.opts, "title": title,
        "meaning": meaning, "form": form, "subject": subject, **(context or {}),
    })


# --- the audit trail ---------------------------------------------------------------------------------


class ReadOnlyAdmin(PlannedRowsMixin, admin.ModelAdmin):
    """Records written by services only (the trail, signatures, document jobs): viewed, never added,
    changed, deleted or acted on from the admin."""

    Media = BadgeMedia
    paginator = IdsFirstPaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        return {}


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "at", "username", "action", "object_type", "object_link", "changed_fields",
                    "short_reason", "request_id")
    list_filter = ("action", ("object_type", IndexedValuesFilter), ("username", AccountFilter),
                   ("at", admin.DateFieldListFilter))
    search_fields = ("=object_id", "object_repr", "=username", "=request_id")
    ordering = ("-sequence",)
    list_per_page = 100
    show_full_result_count = False  # one COUNT less on a table that only grows
    paginator = AuditTrailPaginator  # counts without reading the trail (cmlims/admin_paging.py)
    show_facets = admin.ShowFacets.NEVER  # a facet is a count per choice over the whole trail
    change_list_template = "admin/cmlims/auditentry/change_list.html"  # + "Verify audit trail"
    fields = ("sequence", "at", "user", "username", "action", "object_type", "object_id", "object_repr",
              "changes", "reason", "request_id", "prev_hash", "hash")

    @admin.display(description="object", ordering="object_repr")
    def object_link(self, entry):
        url = admin_change_url(entry.object_type, entry.object_id)
        label = entry.object_repr or entry.object_id or "—"
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description="fields")
    def changed_fields(self, entry):
        changes = entry.changes or {}
        names = sorted(changes)
        return ", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else "")

    @admin.display(description="reason")
    def short_reason(self, entry):
        return entry.reason if len(entry.reason) <= 60 else entry.reason[:57] + "…"

    def get_urls(self):
        return [
            path("timeline/<str:object_type>/<str:object_id>/", self.admin_site.admin_view(self.timeline_view),
                 name="cmlims_timeline"),
            path("verify/", self.admin_site.admin_view(self.verify_view), name="cmlims_audit_verify"),
            *super().get_urls(),
        ]

    def timeline_view(self, request, object_type: str, object_id: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        model = model_for(object_type)
        obj = model._base_manager.filter(pk=object_id).first() if model is not None else None
        if obj is None:
            raise Http404(f"No {object_type} with id {object_id}")
        timeline = timeline_for(obj)
        page = Paginator(timeline.entries, TIMELINE_PAGE).get_page(request.GET.get("page"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Timeline: {obj}",
            "opts": self.opts,
            "object": obj,
            "object_url": admin_change_url(object_type, object_id),
            "timeline": timeline,
            "page": page,
            "rows": audit_entry_rows(page.object_list, first_seen=True),
        }
        return TemplateResponse(request, "admin/cmlims/timeline.html", context)


    def verify_view(self, request):
        """Recompute the whole chain now (the same check as ``manage.py verify_audit``) and show the report."""
        if not roles.may_verify_audit(request.user):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Verify audit trail",
            "opts": self.opts,
            "report": audit_chain_verify().as_dict(),
        }
        return TemplateResponse(request, "admin/cmlims/audit_verify.html", context)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "at", "hash")
    ordering = ("-sequence",)


@admin.register(ApiToken)
class ApiTokenAdmin(AuditHistoryMixin, ReadOnlyAdmin):
    list_display = ("prefix", "user", "created_at", "expires_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "expires_at")
    list_select_related = ("user",)
    search_fields = ("=prefix", "user__username")
    fields = ("prefix", "user", "created_at", "expires_at", "revoked_at")
    actions = ["revoke_selected"]

    def get_actions(self, request):
        return admin.ModelAdmin.get_actions(self, request)

    def has_revoke_permission(self, request) -> bool:
        return request.user.is_superuser

    @admin.action(description="Revoke the selected tokens now", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        from cmlims.services import api_token_revoke

        with transaction.atomic():
            tokens = [api_token_revoke(token=t, actor=request.user, reason="revoked in the admin")
                      for t in queryset.select_related("user")]
        self.message_user(request, f"{len(tokens)} token(s) revoked.", level=messages.SUCCESS)


@admin.register(LoginLock)
class LoginLockAdmin(ReadOnlyAdmin):
    """Login locks (cmlims.logins) for the QC officer and the administrator: which user names and addresses
    are locked, how each lock ended, and a reason page that clears an open one early."""

    list_display = ("value", "subject", "failures", "locked_at", "locked_until", "end", "ended_at", "clear_link")
    list_filter = (("ended_at", admin.EmptyFieldListFilter), "subject", "end")
    search_fields = ("=value",)
    ordering = ("-locked_at", "-pk")
    fields = ("subject", "value", "failures", "locked_at", "locked_until", "end", "ended_at")

    @admin.display(description="clear")
    def clear_link(self, lock):
        if lock.ended_at is not None:
            return "—"
        return format_html('<a href="{}">Clear…</a>', reverse("admin:cmlims_loginlock_clear", args=[lock.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view(self.clear_view)
        return [path("<path:object_id>/clear/", view, name="cmlims_loginlock_clear"), *super().get_urls()]

    def clear_view(self, request, object_id):
        from cmlims.logins import login_lock_clear, may_clear_locks

        if not may_clear_locks(request.user):
            raise PermissionDenied  # before the lookup: a refusal says nothing about which locks exist
        lock = self.get_object(request, object_id)
        if lock is None:
            raise Http404(f"No login lock with id {object_id}")
        if lock.ended_at is not None:
            self.message_user(request, f"{lock} has ended already ({lock.get_end_display()}).", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:cmlims_loginlock_changelist"))
        form = VoidForm(request.POST or None)
        form.fields["reason"].help_text = "Why the lock is cleared before it runs out."
        if request.method == "POST" and form.is_valid():
            named = {"username" if lock.subject == LoginLock.Subject.USERNAME else "ip_address": lock.value}
            try:
                login_lock_clear(actor=request.user, reason=form.cleaned_data["reason"], **named)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"{lock} was cleared.", level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:cmlims_loginlock_changelist"))
        context = {**self.admin_site.each_context(request), "title": f"Clear {lock}", "opts": self.opts,
                   "object": lock, "form": form}
        return TemplateResponse(request, "admin/cmlims/login_lock_clear.html", context)


# --- users and groups: history from the trail, users never deleted --------------------------------------

User = get_user_model()


class GmpUserChangeForm(UserChangeForm):
    def clean(self):
        cleaned = super().clean()
        groups = cleaned.get("groups")
        problem = roles.superuser_gmp_refusal(is_superuser=bool(cleaned.get("is_superuser")),
                                              group_names=[g.name for g in groups] if groups else [])
        if problem:
            raise forms.ValidationError(problem[0].upper() + problem[1:] + ".", code=roles.SUPERUSER_REFUSED)
        return cleaned


class AuditedUserAdmin(PlannedRowsMixin, AuditHistoryMixin, UserAdmin):
    form = GmpUserChangeForm

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead: a user id is never reused (Part 11 §11.300(a))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class AuditedGroupAdmin(PlannedRowsMixin, AuditHistoryMixin, GroupAdmin):
    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the role groups carry the permission model; a group is changed, never deleted

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


for _model, _admin in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
