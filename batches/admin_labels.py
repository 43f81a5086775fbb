"""The lot's labels page in the admin: its label reconciliation (issued − used − destroyed − returned), printing to a
printer on the bench (only enabled printers whose stock fits the label) or to a file, and recording labels
destroyed or returned. Each form parses its input and calls one service (``batches.documents``)."""

from __future__ import annotations

import re

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from batches import documents
from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.admin import page_role_required
from cmlims.audit import object_type_of
from cmlims.documents import labels
from cmlims.documents.models import DocumentJob, LabelKind
from cmlims.documents.selectors import label_dispositions_for_subject
from cmlims.exceptions import ApplicationError
from cmlims.printing.models import PrinterKind
from cmlims.printing.selectors import printer_list, printers_for_stock
from cmlims.printing.services import A4_MM

TEMPLATE_CHOICES = [("vial", "Vial labels"), ("carton", "Carton labels")]
KIND_CHOICES = [(LabelKind.QUARANTINE.value, "Quarantine"), (LabelKind.FINAL.value, "Final")]
DOWNLOADS = [("download:pdf", "No printer: a PDF file to download"), ("download:zpl", "No printer: a ZPL file")]
CARTON_SIZE = 10  # vials per carton when printed from the admin


def _keys(text: str) -> list[str]:
    """Serials or carton keys as typed: one per line, or separated by commas or spaces."""
    return [k for k in re.split(r"[\s,;]+", text or "") if k]


def _mm(value) -> str:
    return format(value.normalize(), "f")


def printer_choices(template: str) -> list[tuple[str, str]]:
    """Enabled printers that can print ``template``: its stock size, or an office printer with A4 sheets."""
    tpl = labels.template_get(template)
    fitting = list(printers_for_stock(width_mm=tpl.width_mm, height_mm=tpl.height_mm))
    sheets = [p for p in printers_for_stock(width_mm=float(A4_MM[0]), height_mm=float(A4_MM[1]))
              if p.kind == PrinterKind.IPP and p not in fitting]
    return [(str(p.pk), f"{p.name} — {p.location} ({_mm(p.stock_width_mm)} × {_mm(p.stock_height_mm)} mm "
                        f"{p.stock_material}{', A4 sheet' if p in sheets else ''})") for p in fitting + sheets]


class PrintForm(forms.Form):
    template = forms.ChoiceField(choices=TEMPLATE_CHOICES, widget=forms.HiddenInput)
    kind = forms.ChoiceField(choices=KIND_CHOICES)
    printer = forms.ChoiceField(help_text="enabled printers holding this label's stock (or A4 sheets)")
    vials = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                            help_text="serials, one per line; empty: every vial without this label yet "
                                      "(carton labels: every vial)")
    copies = forms.IntegerField(min_value=1, max_value=documents.MAX_COPIES, initial=1)
    reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="required for a reprint: the labels it replaces are recorded destroyed")

    def __init__(self, *args, template: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].initial = template
        self.fields["printer"].choices = printer_choices(template) + DOWNLOADS


class DispositionForm(forms.Form):
    template = forms.ChoiceField(choices=TEMPLATE_CHOICES)
    kind = forms.ChoiceField(choices=KIND_CHOICES)
    disposition = forms.ChoiceField(choices=[("destroyed", "Destroyed"), ("returned", "Returned")])
    labels = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="which labels: vial serials or carton keys (carton-1), one per line; "
                                       "a serial twice is two of its labels")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), help_text="why they were destroyed or returned")


def _job_link(job: DocumentJob):
    return format_html('<a href="{}">job {}</a>', reverse("admin:documents_documentjob_change", args=[job.pk]), job.pk)


def _print(request, lot: CMLot, form: PrintForm) -> DocumentJob:
    d = form.cleaned_data
    return documents.lot_labels_page_request(
        lot=lot, actor=request.user, template=d["template"], kind=d["kind"], destination=d["printer"],
        vials=_keys(d["vials"]), reason=d["reason"], copies=d["copies"], carton_size=CARTON_SIZE)


def _show_error(form: forms.Form, exc: ApplicationError) -> None:
    """The service's refusal on the form: each named field at its field, anything else at the top."""
    fields = exc.extra.get("fields") or {}
    placed = False
    for name, problems in fields.items():
        if name in form.fields:
            form.add_error(name, " ".join(str(p) for p in problems))
            placed = True
    if not placed:
        details = [c.get("detail", "") for c in exc.extra.get("conditions") or []]
        form.add_error(None, exc.message + (f" ({'; '.join(details)})" if details else ""))


def lot_labels_view(modeladmin, request, pk: int):
    """GET: the reconciliation, the print forms and the destroyed/returned records. POST: one of the forms."""
    # Who prints labels (lab staff: quarantine; shipping: final); refused before the lookup. QC reads the
    # reconciliation on the sign-off checklist and in the batch record.
    page_role_required(request, roles.LAB_STAFF, roles.SHIPPING_COORDINATOR)
    lot = CMLot.objects.select_related("product").filter(pk=pk).first()
    if lot is None:
        raise Http404(f"No lot {pk}")
    default_kind = LabelKind.FINAL if lot.status == LotStatus.RELEASED else LabelKind.QUARANTINE
    prints = {t: PrintForm(template=t, prefix=f"print-{t}", initial={"kind": default_kind})
              for t, _ in TEMPLATE_CHOICES}
    disposition = DispositionForm(prefix="disposition", initial={"kind": default_kind})
    here = reverse("admin:batches_cmlot_labels", args=[lot.pk])
    if request.method == "POST":
        form_name = request.POST.get("form", "")
        if form_name in {f"print-{t}" for t in prints}:
            template = form_name.removeprefix("print-")
            form = prints[template] = PrintForm(request.POST, template=template, prefix=form_name)
            if form.is_valid():
                try:
                    job = _print(request, lot, form)
                except ApplicationError as exc:
                    _show_error(form, exc)
                else:
                    modeladmin.message_user(request, format_html(
                        "{}: {} {} labels queued — {} (the job page shows what the printer answered)",
                        lot, form.cleaned_data["kind"], form.cleaned_data["template"], _job_link(job)),
                        level=messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:documents_documentjob_change", args=[job.pk]))
        elif form_name == "disposition":
            disposition = DispositionForm(request.POST, prefix="disposition")
            if disposition.is_valid():
                d = disposition.cleaned_data
                try:
                    rows = documents.lot_label_disposition_record(
                        lot=lot, actor=request.user, template=d["template"], kind=d["kind"],
                        disposition=d["disposition"], labels=_keys(d["labels"]), reason=d["reason"])
                except ApplicationError as exc:
                    _show_error(disposition, exc)
                else:
                    modeladmin.message_user(request, f"{lot}: {sum(r.count for r in rows)} {d['template']} "
                                                     f"{d['kind']} label(s) recorded {d['disposition']}.",
                                            level=messages.SUCCESS)
                    return HttpResponseRedirect(here)
    reconciliation = documents.lot_label_reconciliation(lot)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": f"Labels of lot {lot.lot_number}",
        "opts": modeladmin.opts,
        "lot": lot,
        "reconciliation": reconciliation,
        "problems": reconciliation.conditions(f"lot {lot.lot_number}"),
        "print_forms": [(dict(TEMPLATE_CHOICES)[t], f"print-{t}", f) for t, f in prints.items()],
        "disposition_form": disposition,
        "dispositions": label_dispositions_for_subject(subject_type=object_type_of(CMLot), subject_id=str(lot.pk)),
        "jobs": DocumentJob.objects.filter(subject_type=object_type_of(CMLot), subject_id=str(lot.pk),
                                           kind=documents.LOT_LABELS)
                .select_related("requested_by", "dispatch__printer")[:20],
        "change_url": reverse("admin:batches_cmlot_change", args=[lot.pk]),
        "printers_url": reverse("admin:printing_printer_changelist"),
        "any_printer": printer_list(enabled=True).exists(),
    }
    return TemplateResponse(request, "admin/batches/cmlot/labels.html", context)
