"""Document endpoints of a lot: labels (and, with qc, the certificate and batch record) -> 202 + job URL."""

from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.documents import (
    lot_batch_record_request,
    lot_label_disposition_record,
    lot_label_reconciliation,
    lot_labels_request,
)
from batches.selectors import lot_get
from cmlims import roles
from cmlims.api.parsing import request_parse
from cmlims.api.permissions import RoleWriters, WorkingRoleReaders
from cmlims.api.schema import alternative, request_alternatives
from cmlims.audit import object_type_of
from cmlims.documents.api.views import JobAcceptedSerializer, LabelReconciliationRowBody, job_accepted
from cmlims.documents.selectors import label_dispositions_for_subject


class LotLabelRequest(serializers.Serializer):
    """What a label request may say (types and choices; the label rules are the service's)."""

    template = serializers.ChoiceField(choices=["vial", "carton"])
    kind = serializers.ChoiceField(choices=["quarantine", "final"])
    format = serializers.ChoiceField(choices=["pdf", "zpl"], required=False, allow_null=True, default=None,
                                     help_text="required without a printer; with one, the printer's format")
    printer = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="printer id: the job sends the labels there")
    vials = serializers.ListField(child=serializers.CharField(), required=False, allow_null=True, default=None)
    reason = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="required to reprint a label")
    copies = serializers.IntegerField(required=False, min_value=1, max_value=10, default=1)
    carton_size = serializers.IntegerField(required=False, min_value=1, allow_null=True, default=None)
    layout = serializers.ChoiceField(choices=["page", "a4"], required=False, default="page")

    def to_internal_value(self, data):
        """``format`` is required unless a printer is named (then it is the printer's), reported with the rest."""
        errors, value = {}, None
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors = dict(exc.detail)
        if data.get("format") in (None, "") and data.get("printer") in (None, ""):
            errors.setdefault("format", ["This field is required unless a printer is named."])
        if errors:
            raise serializers.ValidationError(errors)
        return value


# Labels go to a printer (in its format) or come back as a file of the format asked for: the two shapes.
LOT_LABEL_REQUEST = request_alternatives("LotLabelRequest", [
    alternative(LotLabelRequest, "LotLabelToPrinter", without=("format",),
                printer=serializers.IntegerField(min_value=1, help_text="printer id: the job sends the labels there")),
    alternative(LotLabelRequest, "LotLabelAsFile", required=("format",), without=("printer",)),
])


ReconciliationSerializer = inline_serializer(
    "LotLabelReconciliation",
    {
        "lot": serializers.CharField(),
        "vials": serializers.IntegerField(help_text="vials shown on the lot (destroyed ones included)"),
        "balanced": serializers.BooleanField(),
        "labels": LabelReconciliationRowBody(many=True),
    },
)


class LotLabelsView(APIView):
    """GET: the lot's label reconciliation (vial and carton labels issued, used, destroyed, returned).
    POST: print vial or carton labels — quarantine (lab staff) or final (shipping coordinator, rule 4)."""

    # Label accounting is neither a lot nor a result: read by the three working roles, not integration.
    permission_classes = [IsAuthenticated, WorkingRoleReaders, RoleWriters]
    write_roles = (roles.LAB_STAFF, roles.SHIPPING_COORDINATOR)  # quarantine labels or final ones

    @extend_schema(responses={200: ReconciliationSerializer})
    def get(self, request, lot_number: str):
        lot = lot_get(lot_number)
        rec = lot_label_reconciliation(lot)
        return Response(reconciliation_body(lot, rec))

    @extend_schema(request=LOT_LABEL_REQUEST, responses={202: JobAcceptedSerializer})
    def post(self, request, lot_number: str):
        d = request_parse(LotLabelRequest, request)  # the body first (400), then the lot (404)
        job = lot_labels_request(
            lot=lot_get(lot_number), actor=request.user, template=d["template"], kind=d["kind"],
            output_format=d["format"], vials=d["vials"], reason=d["reason"], copies=d["copies"],
            carton_size=d["carton_size"], layout=d["layout"], printer=d["printer"],
        )
        return job_accepted(job)


def reconciliation_body(lot, rec) -> dict:
    return {"lot": lot.lot_number, "vials": rec.expected_items, "balanced": rec.balanced,
            "labels": [vars(row) for row in rec.rows]}


class LabelDispositionRequest(serializers.Serializer):
    template = serializers.ChoiceField(choices=["vial", "carton"])
    kind = serializers.ChoiceField(choices=["quarantine", "final"])
    disposition = serializers.ChoiceField(choices=["destroyed", "returned"])
    labels = serializers.ListField(child=serializers.CharField(), allow_empty=False,
                                   help_text="the labels by their item: vial serial or carton key (carton-1); "
                                             "an item twice is two of its labels")
    reason = serializers.CharField(help_text="why they were destroyed or returned")


_DISPOSITION_FIELDS = {
    "id": serializers.IntegerField(), "template": serializers.CharField(), "kind": serializers.CharField(),
    "item": serializers.CharField(), "disposition": serializers.CharField(), "count": serializers.IntegerField(),
    "reason": serializers.CharField(), "recorded_by": serializers.CharField(),
    "recorded_at": serializers.DateTimeField(),
    "replaced_by": serializers.IntegerField(allow_null=True, help_text="the reprint (label print id) that replaced it"),
}


def disposition_body(d) -> dict:
    return {"id": d.pk, "template": d.template, "kind": d.kind, "item": d.item_key, "disposition": d.disposition,
            "count": d.count, "reason": d.reason, "recorded_by": d.recorded_by.get_username(),
            "recorded_at": d.recorded_at, "replaced_by": d.replaced_by_id}


class LotLabelDispositionsView(APIView):
    """GET: labels of the lot recorded destroyed or returned. POST: record some (who, how many, which, why):
    quarantine labels lab staff, final labels the shipping coordinator; 201 with the records and the
    reconciliation after them."""

    permission_classes = [IsAuthenticated, WorkingRoleReaders, RoleWriters]
    write_roles = (roles.LAB_STAFF, roles.SHIPPING_COORDINATOR)  # quarantine labels or final ones

    @extend_schema(responses={200: inline_serializer("LabelDisposition", _DISPOSITION_FIELDS, many=True)})
    def get(self, request, lot_number: str):
        lot = lot_get(lot_number)
        return Response([disposition_body(d) for d in label_dispositions_for_subject(
            subject_type=object_type_of(lot), subject_id=str(lot.pk))])

    @extend_schema(request=LabelDispositionRequest, responses={201: inline_serializer("LabelDispositionRecorded", {
        "recorded": inline_serializer("LabelDispositionRow", _DISPOSITION_FIELDS, many=True),
        "reconciliation": ReconciliationSerializer})})
    def post(self, request, lot_number: str):
        d = request_parse(LabelDispositionRequest, request)
        lot = lot_get(lot_number)
        rows = lot_label_disposition_record(lot=lot, actor=request.user, template=d["template"], kind=d["kind"],
                                            disposition=d["disposition"], labels=d["labels"], reason=d["reason"])
        return Response({"recorded": [disposition_body(r) for r in rows],
                         "reconciliation": reconciliation_body(lot, lot_label_reconciliation(lot))}, status=201)


class LotBatchRecordView(APIView):
    """Generate the batch record of a lot (QC officer)."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    @extend_schema(request=None, responses={202: JobAcceptedSerializer})
    def post(self, request, lot_number: str):
        return job_accepted(lot_batch_record_request(lot=lot_get(lot_number), actor=request.user))


urlpatterns = [
    path("lots/<str:lot_number>/labels/", LotLabelsView.as_view(), name="lot-labels"),
    path("lots/<str:lot_number>/labels/dispositions/", LotLabelDispositionsView.as_view(),
         name="lot-label-dispositions"),
    path("lots/<str:lot_number>/batch-record/", LotBatchRecordView.as_view(), name="lot-batch-record"),
]
