"""The freeze-drying run on one admin page: loading (for a new run), the three phases as one table and the
completion, recorded in one go by ``drying.lyophilisation_run_record`` (the stock change page needs an inline
per phase and a second save for the completion). Server-rendered forms; the logic is the service's.

A refusal is shown where it belongs: on the field, named by its label ("Primary drying · Started at: …"), in a
summary at the top with a link to the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.forms.models import fields_for_model
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst

from cmlims import roles
from cmlims.admin import page_role_required
from cmlims.exceptions import ApplicationError

from . import models as m
from . import selectors
from .services import drying

LOADING_FIELDS = ("run_number", "dryer", "recipe", "recipe_version", "vials_loaded", "fill_volume_ml",
                  "started_at", "performed_at")
PHASE_FIELDS = ("shelf_temperature_setpoint_c", "shelf_temperature_actual_c", "chamber_pressure_setpoint_mbar",
                "chamber_pressure_actual_mbar", "started_at", "ended_at")
PHASE_HEADINGS = {"shelf_temperature_setpoint_c": "Shelf set point (°C)",
                  "shelf_temperature_actual_c": "Shelf actual (°C)",
                  "chamber_pressure_setpoint_mbar": "Pressure set point (mbar)",
                  "chamber_pressure_actual_mbar": "Pressure actual (mbar)",
                  "started_at": "Started", "ended_at": "Ended"}
TIME_FORMAT = "%Y-%m-%dT%H:%M"


def _time_field(field: forms.Field) -> forms.Field:
    """A browser's own date-and-time input, read in the site's zone (named beside the field)."""
    zone = timezone.get_current_timezone_name()
    return forms.DateTimeField(
        required=field.required, label=field.label, input_formats=[TIME_FORMAT, "%Y-%m-%d %H:%M:%S"],
        help_text=" ".join(filter(None, [str(field.help_text or ""), f"time in {zone}"])),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=TIME_FORMAT),
    )


def _model_fields(model, names, *, required: bool | None = None) -> dict[str, forms.Field]:
    fields = fields_for_model(model, fields=names)
    for name, field in fields.items():
        if isinstance(field, forms.DateTimeField):
            field = fields[name] = _time_field(field)
        if required is not None:
            field.required = required
    return fields


class LoadingForm(forms.Form):
    """Loading the dryer: which lot (only lots waiting for a run), the recipe and the vials loaded."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lot"] = forms.ModelChoiceField(
            queryset=selectors.lots_awaiting_drying(m.CMLot.objects.all()).order_by("lot_number"),
            help_text="lots pooled, processed and without a run",
        )
        self.fields.update(_model_fields(m.LyophilisationRun, LOADING_FIELDS))
        loaded = self.fields["performed_at"]
        loaded.label, loaded.required = "Loaded at", False
        loaded.help_text = f"when the dryer was loaded (blank: now); {loaded.help_text}"


class PhaseForm(forms.Form):
    """One phase row; blank means "not recorded yet", a partly filled row is refused field by field."""

    def __init__(self, *args, phase: str, **kwargs):
        super().__init__(*args, prefix=phase, **kwargs)
        self.phase = phase
        self.label = m.LyophilisationPhase.Phase(phase).label
        self.fields.update(_model_fields(m.LyophilisationPhase, PHASE_FIELDS, required=False))
        for name, field in self.fields.items():
            field.widget.attrs["aria-label"] = f"{capfirst(self.label)}: {PHASE_HEADINGS[name]}"

    def clean(self):
        cleaned = super().clean()
        given = {name for name, value in cleaned.items() if value not in (None, "")}
        if given:
            for name in set(PHASE_FIELDS) - given - set(self.errors):
                self.add_error(name, "needed to record this phase")
        return cleaned

    def values(self) -> dict | None:
        data = {name: self.cleaned_data.get(name) for name in PHASE_FIELDS}
        return data if any(v not in (None, "") for v in data.values()) else None


class CompletionForm(forms.Form):
    """End of primary drying, stoppering and alarms; left blank, the run stays open."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="completion", **kwargs)
        self.fields.update(_model_fields(m.LyophilisationRun, drying.COMPLETION_FIELDS, required=False))
        self.fields["alarm_count"].initial = 0
        self.fields["end_of_primary_drying_evidence"].widget.attrs.update(rows=2)
        self.fields["alarms"].widget.attrs.update(rows=2)

    def clean(self):
        cleaned = super().clean()
        if self.values():
            for name in set(drying.COMPLETION_REQUIRED) - set(self.errors):
                if cleaned.get(name) in (None, ""):
                    self.add_error(name, "needed to complete the run")
        return cleaned

    def values(self) -> dict | None:
        data = {name: self.cleaned_data.get(name) for name in drying.COMPLETION_FIELDS}
        given = {k: v for k, v in data.items() if v not in (None, "") and not (k == "alarm_count" and v == 0)}
        return data if given else None


class ReasonForm(forms.Form):
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="needed for a late entry (a step more than a day ago) or a change after release",
    )


@dataclass
class RunPage:
    run: m.LyophilisationRun | None
    loading: LoadingForm | None
    phases: list[PhaseForm]
    recorded: list[m.LyophilisationPhase]
    completion: CompletionForm | None
    reason: ReasonForm

    def forms(self) -> list[forms.Form]:
        return [f for f in (self.loading, *self.phases, self.completion, self.reason) if f is not None]

    def form_for(self, key: str) -> tuple[forms.Form | None, str]:
        """The form and field a service's field name ("primary_drying.started_at", "vials_loaded") points at."""
        if "." in key:
            phase, name = key.split(".", 1)
            return next((f for f in self.phases if f.phase == phase), None), name
        for form in (self.loading, self.completion):
            if form is not None and key in form.fields:
                return form, key
        return (self.reason, "reason") if key == "reason" else (None, key)

    def summary(self) -> list[dict]:
        """Every error by its label, with a link to its field, for the top of the page."""
        rows = []
        for form in self.forms():
            where = f"{capfirst(form.label)} · " if isinstance(form, PhaseForm) else ""
            for name, errors in form.errors.items():
                if name == "__all__":
                    rows += [{"text": str(e), "anchor": ""} for e in errors]
                    continue
                label = PHASE_HEADINGS[name] if isinstance(form, PhaseForm) else form.fields[name].label
                rows += [{"text": f"{where}{capfirst(label)}: {e}", "anchor": form[name].auto_id} for e in errors]
        return rows


def _page(run: m.LyophilisationRun | None, data=None) -> RunPage:
    recorded = list(run.phases.filter(voided_at__isnull=True).order_by("started_at")) if run else []
    done = {p.phase for p in recorded}
    open_run = run is None or not run.is_complete
    return RunPage(
        run=run,
        loading=LoadingForm(data) if run is None else None,
        phases=[PhaseForm(data, phase=p) for p in drying.PHASE_ORDER if p not in done] if open_run else [],
        recorded=recorded,
        completion=CompletionForm(data) if open_run else None,
        reason=ReasonForm(data),
    )


def _show_refusal(page: RunPage, exc: ApplicationError) -> None:
    fields = exc.extra.get("fields") or {}
    placed = False
    for key, problems in fields.items():
        form, name = page.form_for(key)
        if form is not None and name in form.fields:
            for problem in problems:
                form.add_error(name, problem)
            placed = True
    if not placed:
        page.reason.add_error(None, exc.message)
        for condition in exc.extra.get("conditions", []):
            page.reason.add_error(None, condition.get("detail", condition.get("code")))


RECORDING_ROLES = (roles.LAB_STAFF,)  # recording is lab work: QC, shipping and the superuser read the run's page


def may_record_run(user) -> bool:
    return not user.is_superuser and roles.has_role(user, *RECORDING_ROLES)


def drying_run_record_view(model_admin, request, pk: int | None = None):
    """GET: the page; POST: everything filled in, through one service call (all or nothing)."""
    page_role_required(request, *RECORDING_ROLES)
    run = None
    if pk is not None:
        run = m.LyophilisationRun.objects.select_related("lot", "performed_by", "completed_by").filter(pk=pk).first()
        if run is None:
            raise Http404(f"No freeze-drying run {pk}")
    allowed = model_admin.has_change_permission(request, run) if run else model_admin.has_add_permission(request)
    if not allowed:
        raise PermissionDenied
    page = _page(run, request.POST if request.method == "POST" else None)
    if request.method == "POST" and all(form.is_valid() for form in page.forms()):
        try:
            saved = drying.lyophilisation_run_record(
                actor=request.user, run=run,
                lot=page.loading.cleaned_data["lot"] if page.loading else None,
                loading={k: v for k, v in page.loading.cleaned_data.items() if k != "lot" and v is not None}
                if page.loading else None,
                phases={f.phase: f.values() for f in page.phases if f.values()},
                completion=page.completion.values() if page.completion else None,
                reason=page.reason.cleaned_data["reason"],
            )
        except ApplicationError as exc:
            _show_refusal(page, exc)
        else:
            done = ", ".join(str(p) for p in saved.phases.filter(voided_at__isnull=True).order_by("started_at"))
            state = "completed" if saved.is_complete else "open"
            model_admin.message_user(request, f"Freeze-drying run {saved.run_number} recorded for lot {saved.lot}: "
                                     f"phases {done or 'none yet'}; run {state}.", level=messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:batches_lyophilisationrun_change", args=[saved.pk]))
    title = f"Record freeze-drying run {run.run_number}" if run else "Record a freeze-drying run"
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts, "title": title, "page": page, "run": run, "summary": page.summary(),
        "headings": [PHASE_HEADINGS[n] for n in PHASE_FIELDS],
        "zone": timezone.get_current_timezone_name(),
        "change_url": reverse("admin:batches_lyophilisationrun_change", args=[run.pk]) if run else "",
    }
    return TemplateResponse(request, "admin/batches/lyophilisationrun/record.html", context)
