"""Admin for the shipping coordinator: build a shipment by scanning or typing serials (or by lot and count),
pack, hand to the courier (signed), record delivery, upload the logger file, confirm receipt (signed), print
the label and packing list, and look up a recall. Each page parses its form and calls one service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from batches.admin import adopt
from batches.shipping import lifecycle, selectors, services
from batches.shipping.charts import temperature_chart_png
from batches.shipping.documents import PACKING_LIST, SHIPPING, SHIPPING_LABEL, shipment_document_request
from batches.shipping.gs1 import scans_split
from batches.shipping.models import Consignee, CustodyEvent, Shipment, ShipmentStatus, ShipmentVial, TemperatureLog
from cmlims.admin import AuditedModelAdmin, AuditedTabularInline, SignatureForm, status_column
from cmlims.exceptions import ApplicationError
from cmlims.printing.selectors import printers_for_stock


@admin.register(Consignee)
class ConsigneeAdmin(AuditedModelAdmin):
    list_display = ("name", "kind", "city", "country", "contact_name", "voided_at")
    list_filter = ("kind", "country")
    search_fields = ("name", "city", "contact_name")
    fields = services.consignees.EDITABLE

    def save_model(self, request, obj, form, change):
        values = {n: form.cleaned_data[n] for n in services.consignees.EDITABLE if n in form.cleaned_data}
        reason = form.cleaned_data.get("change_reason", "")
        if change:
            saved = services.consignee_update(consignee=obj, actor=request.user, reason=reason,
                                              **{n: values[n] for n in form.changed_data if n in values})
        else:
            saved = services.consignee_create(actor=request.user, **values)
        obj.pk, obj._state = saved.pk, saved._state

    def void_object(self, request, obj, reason: str):
        return services.consignee_void(consignee=obj, actor=request.user, reason=reason)


class HistoryInline(AuditedTabularInline):
    """Read-only rows under a shipment: they change only through the step pages (services)."""

    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AllocationInline(HistoryInline):
    model = ShipmentVial
    fields = ("vial", "lot", "expiry", "allocated_at", "allocated_by", "scanned_as")
    readonly_fields = fields
    verbose_name_plural = "vials in the shipment"

    def get_queryset(self, request):
        return (super().get_queryset(request).filter(released_at__isnull=True)
                .select_related("vial__lot", "allocated_by"))

    @admin.display(description="lot")
    def lot(self, obj):
        return obj.vial.lot.lot_number

    @admin.display(description="expiry")
    def expiry(self, obj):
        return obj.vial.lot.expiry


class CustodyInline(HistoryInline):
    model = CustodyEvent
    fields = ("kind", "occurred_at", "recorded_by", "party", "notes", "signature")
    readonly_fields = fields
    verbose_name_plural = "chain of custody"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("recorded_by", "signature")


class TemperatureLogInline(HistoryInline):
    model = TemperatureLog
    fields = ("file_name", "uploaded_at", "uploaded_by", "sample_count", "min_c", "max_c", "minutes_outside",
              "allowed_minutes", "excursion", "investigation", "voided_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("source_csv").select_related("uploaded_by", "investigation")


# --- step forms -----------------------------------------------------------------------------------------


class AllocateForm(forms.Form):
    scans = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 8, "autofocus": True}),
        help_text="Scan each vial's DataMatrix or type serials, one per line.",
    )
    lot = forms.CharField(required=False, help_text="…or take vials from this lot (with a count)")
    count = forms.IntegerField(required=False, min_value=1, help_text="first-expiry-first-out")

    def clean(self):
        cleaned = super().clean()
        if bool(scans_split(cleaned.get("scans", ""))) == bool(cleaned.get("count")):
            raise forms.ValidationError("Scan or type serials, or give a count (and optionally a lot).")
        return cleaned


class ReleaseForm(forms.Form):
    scans = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                            help_text="Serials to take out; leave empty to take out every vial.")
    reason = forms.CharField(required=False)


AS_RECORDED = [("", "— as recorded —")]


class PackForm(forms.Form):
    # Shown with what was entered at creation; left blank, the service keeps it (never a default).
    shipper_type = forms.ChoiceField(choices=AS_RECORDED + Shipment.ShipperType.choices, required=False)
    coolant = forms.ChoiceField(choices=AS_RECORDED + Shipment.Coolant.choices, required=False)
    logger_serial = forms.CharField(required=False)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class ShipForm(SignatureForm):
    courier = forms.CharField(required=False, help_text="as entered on the shipment unless changed here")
    tracking_number = forms.CharField(required=False, help_text="as entered on the shipment unless changed here")
    party = forms.CharField(required=False, label="courier's driver / agent")
    field_order = ["courier", "tracking_number", "party", "username", "password", "reason"]


class DeliverForm(forms.Form):
    occurred_at = forms.DateTimeField(required=False, help_text="proof-of-delivery time (UTC); empty = now")
    party = forms.CharField(required=False, label="signed for by")
    notes = forms.CharField(required=False)


class ReceiveForm(SignatureForm):
    received_by_name = forms.CharField(label="received by (consignee's person)")
    field_order = ["received_by_name", "username", "password", "reason"]


class LogForm(forms.Form):
    file = forms.FileField(help_text="CSV with the header timestamp,temperature_c (ISO 8601 times with offset)")
    reason = forms.CharField(required=False, help_text="required to replace an earlier file")
    qc_username = forms.CharField(required=False, label="QC officer's user name",
                                  help_text="replacing a file is signed by a QC officer (not you)")
    qc_password = forms.CharField(required=False, label="QC officer's password", strip=False,
                                  widget=forms.PasswordInput)


class CancelForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class LabelForm(forms.Form):
    printer = forms.ChoiceField(required=False, help_text="enabled printers holding 4×6 in shipping stock; "
                                                          "none: a file in the format below")
    format = forms.ChoiceField(choices=[("pdf", "PDF (4×6 in)"), ("zpl", "ZPL (Zebra)")],
                               help_text="for a file (a printer takes its own format)")
    copies = forms.IntegerField(min_value=1, max_value=10, initial=1)
    reprint_reason = forms.CharField(required=False, help_text="required when the label was printed before")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        fitting = printers_for_stock(width_mm=SHIPPING.width_mm, height_mm=SHIPPING.height_mm)
        self.fields["printer"].choices = [("", "No printer: a file to download")] + [
            (str(p.pk), f"{p.name} — {p.location}") for p in fitting]


class RecallForm(forms.Form):
    lot = forms.CharField(required=False, label="lot number")
    donor = forms.CharField(required=False, label="donor code")

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("lot")) == bool(cleaned.get("donor")):
            raise forms.ValidationError("Give a lot number or a donor code.")
        return cleaned


@dataclass(frozen=True)
class Step:
    title: str
    form: type[forms.Form]
    run: Callable  # (request, shipment, cleaned_data) -> str | HttpResponse
    signed: str = ""  # meaning, for the signing notice
    prefill: tuple[str, ...] = ()  # shipment fields the form starts with (what was entered before)


def _allocate(request, s, d):
    scans = scans_split(d["scans"])
    if scans:
        rows = services.shipment_allocate_scans(shipment=s, scans=scans, actor=request.user)
    else:
        rows = services.shipment_allocate_count(shipment=s, count=d["count"], lot_number=d["lot"] or None,
                                                actor=request.user)
    return f"{len(rows)} vial(s) allocated to {s}."


def _release(request, s, d):
    scans = scans_split(d["scans"]) or None
    rows = services.shipment_release_vials(shipment=s, scans=scans, reason=d["reason"], actor=request.user)
    return f"{len(rows)} vial(s) taken out of {s}."


def _log(request, s, d):
    upload = d["file"]
    log = services.shipment_temperature_log_upload(shipment=s, actor=request.user, file_name=upload.name,
                                                   data=upload.read(), reason=d["reason"],
                                                   qc_username=d["qc_username"], qc_password=d["qc_password"],
                                                   qc_meaning="logger file replaced")
    return f"Logger file stored: {log.minutes_outside} min outside the range" + (
        f" — EXCURSION, {log.investigation.number} opened; receipt on hold." if log.excursion else ".")


def _document(kind):
    def run(request, s, d):
        options = {"output_format": None if d.get("printer") else d["format"], "copies": d["copies"],
                   "reprint_reason": d["reprint_reason"], "printer": int(d["printer"]) if d.get("printer") else None} \
            if kind == SHIPPING_LABEL else {}
        job = shipment_document_request(shipment=s, kind=kind, actor=request.user, **options)
        return HttpResponseRedirect(reverse("admin:documents_documentjob_change", args=[job.pk]))
    return run


STEPS: dict[str, Step] = {
    "allocate": Step("Add vials", AllocateForm, _allocate),
    "release": Step("Take vials out", ReleaseForm, _release),
    "pack": Step("Pack", PackForm, lambda r, s, d: (services.shipment_pack(shipment=s, actor=r.user, **d),
                                                   f"{s} packed.")[1],
                 prefill=("shipper_type", "coolant", "logger_serial")),
    "ship": Step("Hand to courier", ShipForm, lambda r, s, d: (services.shipment_ship(
        shipment=s, actor=r.user, meaning="shipped", **d), f"{s} shipped (signed).")[1], signed="shipped",
        prefill=("courier", "tracking_number")),
    "deliver": Step("Record delivery", DeliverForm, lambda r, s, d: (services.shipment_deliver(
        shipment=s, actor=r.user, **d), f"{s} delivered.")[1]),
    "log": Step("Upload logger file", LogForm, _log),
    "receive": Step("Confirm receipt", ReceiveForm, lambda r, s, d: (services.shipment_receive(
        shipment=s, actor=r.user, meaning="received", **d), f"{s} received (signed).")[1], signed="received"),
    "cancel": Step("Cancel", CancelForm, lambda r, s, d: (services.shipment_cancel(
        shipment=s, actor=r.user, reason=d["reason"]), f"{s} cancelled.")[1]),
    "label": Step("Print shipping label", LabelForm, _document(SHIPPING_LABEL)),
    "packing-list": Step("Packing list", forms.Form, _document(PACKING_LIST)),
}

# What each step needs, from the shipment pipeline (a target status or an activity that keeps the status);
# the buttons a status offers are read from it, never copied (the services enforce the same rules).
STEP_NEEDS = {
    "allocate": lifecycle.ALLOCATING, "release": lifecycle.RELEASING, "pack": ShipmentStatus.PACKED,
    "ship": ShipmentStatus.SHIPPED, "deliver": ShipmentStatus.DELIVERED, "log": lifecycle.LOGGING,
    "receive": ShipmentStatus.RECEIVED, "label": lifecycle.LABELLING, "packing-list": lifecycle.LISTING,
    "cancel": ShipmentStatus.CANCELLED,
}
STEPS_BY_STATUS = {
    status: tuple(step for step, needs in STEP_NEEDS.items()
                  if status in lifecycle.SHIPMENT_PIPELINE.from_states(needs))
    for status in ShipmentStatus.values
}


class ShipmentForm(forms.ModelForm):
    change_reason = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    class Meta:
        model = Shipment
        fields = ("consignee", "product", "courier", "tracking_number", "shipper_type", "coolant", "logger_serial",
                  "notes")


@admin.register(Shipment)
class ShipmentAdmin(AuditedModelAdmin):
    form = ShipmentForm
    # Fits 1280 px: SSCC, product and the other times are on the shipment's page.
    list_display = ("reference", "consignee", "status_shown", "vials", "shipped_at", "received_at")
    list_filter = ("status",)
    search_fields = ("reference", "sscc", "tracking_number", "consignee__name", "allocations__vial__serial")
    list_select_related = ("consignee", "product")
    show_full_result_count = False
    inlines = (AllocationInline, CustodyInline, TemperatureLogInline)
    readonly_fields = ("reference", "sscc", "status", "transport_range", "steps", "chart")
    change_list_template = "admin/shipping/shipment/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            live_vials=Count("allocations", filter=Q(allocations__released_at__isnull=True)))

    def get_fields(self, request, obj=None):
        editable = ["consignee", "product", "courier", "tracking_number", "shipper_type", "coolant", "logger_serial",
                    "notes"]
        if obj is None:
            return editable
        if obj.status not in lifecycle.SHIPMENT_PIPELINE.from_states(lifecycle.CHANGING):
            return ["reference", "sscc", "status", "transport_range", "steps", "chart"]
        return ["reference", "sscc", "status", "transport_range", "steps", *editable[:1], *editable[2:],
                "change_reason"]

    status_shown = status_column()

    @admin.display(description="vials")
    def vials(self, obj):
        return obj.live_vials

    @admin.display(description="transport range")
    def transport_range(self, obj):
        return (f"{obj.transport_temperature_min_c} to {obj.transport_temperature_max_c} °C, "
                f"{obj.transport_excursion_allowed_minutes} min outside allowed")

    @admin.display(description="next steps")
    def steps(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        links = [(reverse("admin:shipping_shipment_step", args=[obj.pk, name]), STEPS[name].title)
                 for name in STEPS_BY_STATUS.get(obj.status, ())]
        return format_html_join(" ", '<a class="button" href="{}">{}</a>', links) or "-"

    @admin.display(description="temperature log")
    def chart(self, obj):
        if obj is None or selectors.shipment_current_log(obj) is None:
            return "no logger file yet"
        return format_html('<img src="{}" alt="temperature log" style="max-width: 100%">',
                           reverse("admin:shipping_shipment_chart", args=[obj.pk]))

    def save_model(self, request, obj, form, change):
        values = {n: form.cleaned_data[n] for n in form.changed_data if n in ShipmentForm.Meta.fields}
        if change:
            values.pop("product", None)
            saved = services.shipment_update(shipment=obj, actor=request.user,
                                             reason=form.cleaned_data.get("change_reason", ""), **values)
        else:
            fields = {n: form.cleaned_data[n] for n in ShipmentForm.Meta.fields if n in form.cleaned_data}
            saved = services.shipment_create(actor=request.user, **fields)
        adopt(obj, saved)  # with its reference: the "added" message names SHP-000002, not "shipment 2"

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()  # read-only history; vials move through the step pages

    def get_urls(self):
        return [
            path("recall/", self.admin_site.admin_view(self.recall_view), name="shipping_recall"),
            path("<int:pk>/step/<str:step>/", self.admin_site.admin_view(self.step_view),
                 name="shipping_shipment_step"),
            path("<int:pk>/chart.png", self.admin_site.admin_view(self.chart_view), name="shipping_shipment_chart"),
            *super().get_urls(),
        ]

    def step_view(self, request, pk: int, step: str):
        if not self.has_change_permission(request):
            raise PermissionDenied
        if step not in STEPS:
            raise Http404(f"no step {step}")
        shipment = selectors.shipment_get(pk)
        spec = STEPS[step]
        initial = {name: getattr(shipment, name) for name in spec.prefill}
        if issubclass(spec.form, SignatureForm):  # a signed step starts with the signer's own user name, as QC's
            initial["username"] = request.user.get_username()
        form = spec.form(request.POST or None, request.FILES or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                outcome = spec.run(request, shipment, dict(form.cleaned_data))
            except ApplicationError as exc:
                form.add_error(None, exc.message)
                for item in exc.extra.get("vials", []):
                    form.add_error(None, f"{item['serial']}: {item.get('reason', '')}")
                for item in exc.extra.get("conditions", []):  # in words: the code is for API clients
                    form.add_error(None, item.get("detail") or item.get("code", ""))
                for row in exc.extra.get("rows", []):
                    form.add_error(None, f"row {row['row']} {row['column']}: {row['problem']}")
            else:
                if isinstance(outcome, HttpResponse):
                    return outcome
                self.message_user(request, outcome, level=messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:shipping_shipment_change", args=[pk]))
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "title": f"{spec.title}: {shipment}",
            "shipment": shipment, "form": form, "signed": spec.signed, "step": spec,
        }
        return TemplateResponse(request, "admin/shipping/shipment/step.html", context)

    def chart_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        shipment = selectors.shipment_get(pk)
        log = selectors.shipment_current_log(shipment)
        if log is None:
            raise Http404("no logger file")
        png = temperature_chart_png(selectors.log_readings(log), low_c=log.range_min_c, high_c=log.range_max_c,
                                    title=f"{shipment.reference} logger {log.file_name}")
        return HttpResponse(png, content_type="image/png")

    def recall_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RecallForm(request.GET or None)
        recall = None
        if form.is_valid():
            try:
                d = form.cleaned_data
                recall = (selectors.recall_for_lot(d["lot"].strip()) if d["lot"]
                          else selectors.recall_for_donor(d["donor"].strip()))
            except ApplicationError as exc:
                form.add_error(None, exc.message)
        if recall is not None and request.GET.get("export") == "csv":
            response = HttpResponse(selectors.recall_csv(recall), content_type="text/csv; charset=utf-8")
            name = f"recall-{recall.subject_type}-{recall.subject}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        context = {**self.admin_site.each_context(request), "opts": self.opts, "title": "Recall: where did it go?",
                   "form": form, "recall": recall}
        return TemplateResponse(request, "admin/shipping/recall.html", context)
