"""Shipping API: thin views. Each parses input, calls one service or selector and renders."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.shipping import selectors, services
from batches.shipping.api import serializers as s
from batches.shipping.api.permissions import ShippingReaders
from batches.shipping.charts import temperature_chart_png
from batches.shipping.documents import (
    PACKING_LIST,
    SHIPPING_LABEL,
    shipment_document_request,
    shipment_label_disposition_record,
    shipment_label_reconciliation,
)
from cmlims import roles
from cmlims.api.pagination import CursorPagination
from cmlims.api.parsing import csv_upload_check, request_parse
from cmlims.api.permissions import RoleWriters
from cmlims.api.schema import signing_request
from cmlims.documents.api.views import JobAcceptedSerializer, job_accepted
from cmlims.esign.models import Meaning
from cmlims.exceptions import NotFound


class ShippingView(APIView):
    permission_classes = [ShippingReaders, RoleWriters]
    write_roles = (roles.SHIPPING_COORDINATOR,)


def _detail(pk: int, status_code: int = 200) -> Response:
    shipment = selectors.shipment_get(pk)
    return Response(s.shipment_detail_body(shipment, selectors.shipment_signatures(shipment)), status=status_code)


# --- consignees -----------------------------------------------------------------------------------------


class ByName(CursorPagination):
    ordering = ("name", "id")


class ConsigneeListView(generics.GenericAPIView):
    """Clinics and distributors (cursor pagination). POST adds one (shipping coordinator)."""

    permission_classes = [ShippingReaders, RoleWriters]
    write_roles = (roles.SHIPPING_COORDINATOR,)
    pagination_class = ByName
    serializer_class = s.ConsigneeInput  # what POST accepts: OPTIONS describes it (it asserted without one)

    def get_queryset(self):
        return selectors.consignee_list()

    @extend_schema(operation_id="consignees_list", responses={200: s.ConsigneeBody(many=True)})
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([s.consignee_body(c) for c in page])

    @extend_schema(request=s.ConsigneeInput, responses={201: s.ConsigneeBody})
    def post(self, request):
        values = request_parse(s.ConsigneeInput, request)
        values.pop("reason", None)
        consignee = services.consignee_create(actor=request.user, **values)
        return Response(s.consignee_body(consignee), status=status.HTTP_201_CREATED)


class ConsigneeDetailView(ShippingView):
    @extend_schema(responses={200: s.ConsigneeBody})
    def get(self, request, pk: int):
        return Response(s.consignee_body(selectors.consignee_get(pk)))

    @extend_schema(request=s.ConsigneeInput(partial=True), responses={200: s.ConsigneeBody})
    def patch(self, request, pk: int):
        values = request_parse(s.ConsigneeInput, request, partial=True)
        reason = values.pop("reason", "")
        return Response(s.consignee_body(services.consignee_update(consignee=pk, actor=request.user, reason=reason,
                                                                   **values)))


# --- shipments ------------------------------------------------------------------------------------------


class ShipmentListView(generics.GenericAPIView):
    """Shipments, newest first (cursor pagination; ``?status=`` filters). POST creates a draft with its SSCC."""

    permission_classes = [ShippingReaders, RoleWriters]
    write_roles = (roles.SHIPPING_COORDINATOR,)
    serializer_class = s.ShipmentInput  # what POST accepts: OPTIONS describes it

    def get_queryset(self):
        queryset = selectors.shipment_list()
        wanted = request_parse(s.ShipmentListQuery, self.request, query=True)["status"]
        return queryset.filter(status__in=wanted) if wanted else queryset

    @extend_schema(operation_id="shipments_list", parameters=[s.ShipmentListQuery],
                   responses={200: s.ShipmentBody(many=True)})
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([s.shipment_body(x) for x in page])

    @extend_schema(request=s.ShipmentInput, responses={201: s.ShipmentDetailBody})
    def post(self, request):
        values = request_parse(s.ShipmentInput, request)
        values.pop("reason", None)
        shipment = services.shipment_create(actor=request.user, **values)
        return _detail(shipment.pk, status.HTTP_201_CREATED)


class ShipmentDetailView(ShippingView):
    @extend_schema(responses={200: s.ShipmentDetailBody})
    def get(self, request, pk: int):
        return _detail(pk)

    @extend_schema(request=s.ShipmentUpdateInput(partial=True), responses={200: s.ShipmentDetailBody})
    def patch(self, request, pk: int):
        values = request_parse(s.ShipmentUpdateInput, request, partial=True)
        reason = values.pop("reason", "")
        services.shipment_update(shipment=selectors.shipment_find(pk), actor=request.user, reason=reason, **values)
        return _detail(pk)


class AllocateView(ShippingView):
    """``{"vials": [serial or scan, ...]}`` or ``{"count": n}`` / ``{"lot": "...", "count": n}`` (FEFO).
    A refusal is 409 with ``vials: [{serial, reason}]`` (or ``conditions``) and nothing allocated."""

    @extend_schema(request=s.ALLOCATE_REQUEST, responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        d = request_parse(s.AllocateInput, request)
        if "vials" in d:
            services.shipment_allocate_scans(shipment=selectors.shipment_find(pk), scans=d["vials"], actor=request.user)
        else:
            services.shipment_allocate_count(shipment=selectors.shipment_find(pk),
                                             count=d["count"], lot_number=d.get("lot"),
                                             actor=request.user)
        return _detail(pk)


class ReleaseVialsView(ShippingView):
    @extend_schema(request=s.ReleaseInput, responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        d = request_parse(s.ReleaseInput, request)
        services.shipment_release_vials(shipment=selectors.shipment_find(pk),
                                        scans=d.get("vials"), reason=d["reason"], actor=request.user)
        return _detail(pk)


class PackView(ShippingView):
    @extend_schema(request=s.PackInput, responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        services.shipment_pack(shipment=selectors.shipment_find(pk), actor=request.user,
                               **request_parse(s.PackInput, request))
        return _detail(pk)


class ShipView(ShippingView):
    """Hand to the courier, signed with meaning "shipped" (username, password, meaning, reason)."""

    @extend_schema(request=signing_request(s.ShipInput, Meaning.SHIPPED), responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        services.shipment_ship(shipment=selectors.shipment_find(pk), actor=request.user,
                               **request_parse(s.ShipInput, request))
        return _detail(pk)


class DeliverView(ShippingView):
    @extend_schema(request=s.DeliverInput, responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        services.shipment_deliver(shipment=selectors.shipment_find(pk),
                                  actor=request.user, **request_parse(s.DeliverInput, request))
        return _detail(pk)


class ReceiveView(ShippingView):
    """Confirm receipt, signed with meaning "received"; refused while an excursion investigation is open."""

    @extend_schema(request=signing_request(s.ReceiveInput, Meaning.RECEIVED), responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        services.shipment_receive(shipment=selectors.shipment_find(pk),
                                  actor=request.user, **request_parse(s.ReceiveInput, request))
        return _detail(pk)


class CancelView(ShippingView):
    @extend_schema(request=s.CancelInput, responses={200: s.ShipmentDetailBody})
    def post(self, request, pk: int):
        services.shipment_cancel(shipment=selectors.shipment_find(pk),
                                 actor=request.user, reason=request_parse(s.CancelInput, request)["reason"])
        return _detail(pk)


class TemperatureLogView(ShippingView):
    """POST multipart ``file`` (CSV ``timestamp,temperature_c``); a bad file is 400 with ``rows``, nothing stored.
    GET the current log's summary."""

    @extend_schema(responses={200: s.TemperatureLogBody})
    def get(self, request, pk: int):
        log = selectors.shipment_current_log(selectors.shipment_get(pk))
        if log is None:
            raise NotFound(f"shipment {pk} has no temperature log yet")
        return Response(s.log_body(log))

    @extend_schema(request={"multipart/form-data": s.LogUploadInput}, responses={201: s.TemperatureLogBody})
    def post(self, request, pk: int):
        d = request_parse(s.LogUploadInput, request)
        upload = d["file"]
        csv_upload_check(upload, export_hint="export the logger data as CSV")
        log = services.shipment_temperature_log_upload(shipment=selectors.shipment_find(pk),
                                                       actor=request.user, file_name=upload.name,
                                                       data=upload.read(), reason=d["reason"],
                                                       qc_username=d["qc_username"], qc_password=d["qc_password"],
                                                       qc_meaning=d.get("qc_meaning"))
        return Response(s.log_body(log), status=status.HTTP_201_CREATED)


class TemperatureChartView(ShippingView):
    """The current log drawn with the transport range (PNG)."""

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        shipment = selectors.shipment_get(pk)
        log = selectors.shipment_current_log(shipment)
        if log is None:
            raise NotFound(f"shipment {pk} has no temperature log yet")
        png = temperature_chart_png(selectors.log_readings(log), low_c=log.range_min_c, high_c=log.range_max_c,
                                    title=f"{shipment.reference} logger {log.file_name}")
        return HttpResponse(png, content_type="image/png")


def _label_reconciliation_body(shipment) -> dict:
    rec = shipment_label_reconciliation(shipment)
    return {"shipment": shipment.pk, "sscc": shipment.sscc, "balanced": rec.balanced,
            "labels": [vars(row) for row in rec.rows]}


class LabelsView(ShippingView):
    """GET: the shipment's shipping labels issued, used, destroyed and returned (reconciliation).
    POST: request the shipping label (GS1-128 SSCC, 4×6 in, PDF or ZPL): 202 with the job."""

    @extend_schema(responses={200: s.ShipmentLabelReconciliationBody})
    def get(self, request, pk: int):
        return Response(_label_reconciliation_body(selectors.shipment_find(pk)))

    @extend_schema(request=s.SHIPPING_LABEL_REQUEST, responses={202: JobAcceptedSerializer})
    def post(self, request, pk: int):
        d = request_parse(s.LabelInput, request)
        return job_accepted(shipment_document_request(shipment=selectors.shipment_find(pk),
                                              kind=SHIPPING_LABEL, actor=request.user,
                                              output_format=d["format"], copies=d["copies"],
                                              reprint_reason=d["reprint_reason"], printer=d["printer"]))


class LabelDispositionsView(ShippingView):
    """POST: record shipping labels of the shipment destroyed or returned (who, how many, why; shipping
    coordinator): 201 with the records and the reconciliation after them."""

    @extend_schema(request=s.LabelDispositionInput, responses={201: s.ShipmentLabelDispositionsBody})
    def post(self, request, pk: int):
        d = request_parse(s.LabelDispositionInput, request)
        rows = shipment_label_disposition_record(shipment=selectors.shipment_find(pk), actor=request.user,
                                                 disposition=d["disposition"], count=d["count"], reason=d["reason"])
        return Response({"recorded": [{"id": r.pk, "item": r.item_key, "disposition": r.disposition,
                                       "count": r.count, "reason": r.reason} for r in rows],
                         "reconciliation": _label_reconciliation_body(selectors.shipment_find(pk))},
                        status=status.HTTP_201_CREATED)


class PackingListView(ShippingView):
    write_roles = (roles.SHIPPING_COORDINATOR, roles.QC_OFFICER)

    @extend_schema(request=None, responses={202: JobAcceptedSerializer})
    def post(self, request, pk: int):
        return job_accepted(shipment_document_request(shipment=selectors.shipment_find(pk),
                                              kind=PACKING_LIST, actor=request.user))


# --- recall ---------------------------------------------------------------------------------------------


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class LotRecallView(ShippingView):
    """Every vial of the lot, the shipments holding them and their consignees (rule 9)."""

    @extend_schema(responses={200: s.RecallBody})
    def get(self, request, lot_number: str):
        return Response(s.recall_body(selectors.recall_for_lot(lot_number)))


class DonorRecallView(ShippingView):
    """Every lot made with the donor's cells, every vial, shipment and consignee (rule 9)."""

    @extend_schema(responses={200: s.RecallBody})
    def get(self, request, code: str):
        return Response(s.recall_body(selectors.recall_for_donor(code)))


class LotRecallCsvView(ShippingView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, lot_number: str):
        return _csv_response(selectors.recall_csv(selectors.recall_for_lot(lot_number)),
                             f"recall-lot-{lot_number}.csv")


class DonorRecallCsvView(ShippingView):
    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, code: str):
        return _csv_response(selectors.recall_csv(selectors.recall_for_donor(code)), f"recall-donor-{code}.csv")
