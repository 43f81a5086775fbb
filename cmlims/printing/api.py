"""Printers API: ``GET/POST /api/v1/printers/``, ``GET/PATCH /api/v1/printers/{id}/``. Thin: parse, one service."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from cmlims import roles
from cmlims.api.pagination import CursorPagination
from cmlims.api.parsing import request_parse
from cmlims.api.permissions import RoleWriters
from cmlims.api.responses import DecimalText
from cmlims.api.schema import alternative, request_alternatives
from cmlims.printing import selectors, services
from cmlims.printing.addresses import IPP_ADDRESS_PATTERN, ZPL_ADDRESS_PATTERN
from cmlims.printing.models import PrinterKind


class PrinterReaders(BasePermission):
    message = "Reading printers needs the role Lab staff, QC officer or Shipping coordinator."

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)


class PrinterInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    location = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=PrinterKind.choices)
    address = serializers.CharField(max_length=300, help_text="zpl: host:port; ipp: ipp://host[:port]/path")
    stock_width_mm = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=1)
    stock_height_mm = serializers.DecimalField(max_digits=6, decimal_places=1, min_value=1)
    stock_material = serializers.CharField(max_length=100)
    enabled = serializers.BooleanField(required=False, default=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", write_only=True)


def _printer_of_kind(kind: PrinterKind, pattern: str, help_text: str) -> type[serializers.Serializer]:
    return alternative(PrinterInput, f"{kind.value.capitalize()}PrinterInput",
                       kind=serializers.ChoiceField(choices=[(kind.value, kind.label)]),
                       address=serializers.CharField(max_length=300, validators=[RegexValidator(pattern)],
                                                     help_text=help_text))


# The address's form depends on the kind (``addresses.address_parse``): one shape per kind.
PRINTER_REQUEST = request_alternatives("PrinterInput", {
    PrinterKind.ZPL.value: _printer_of_kind(PrinterKind.ZPL, ZPL_ADDRESS_PATTERN, "host:port, e.g. 10.0.4.21:9100"),
    PrinterKind.IPP.value: _printer_of_kind(PrinterKind.IPP, IPP_ADDRESS_PATTERN,
                                      "ipp://host[:port]/path or ipps://…, e.g. ipp://printhost:631/printers/office"),
}, by="kind")


class PrinterBody(serializers.Serializer):
    """``selectors.printer_body`` (the schema's)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    location = serializers.CharField()
    kind = serializers.ChoiceField(choices=PrinterKind.choices)
    address = serializers.CharField()
    stock_width_mm = DecimalText()
    stock_height_mm = DecimalText()
    stock_material = serializers.CharField()
    enabled = serializers.BooleanField()


class ByName(CursorPagination):
    ordering = ("name", "id")


class PrinterListView(generics.GenericAPIView):
    """Printers by name (``?enabled=1`` only enabled ones). POST adds one (lab staff)."""

    permission_classes = [PrinterReaders, RoleWriters]
    write_roles = (roles.LAB_STAFF,)  # lab staff manage printers
    pagination_class = ByName
    serializer_class = PrinterInput

    def get_queryset(self):
        enabled = self.request.query_params.get("enabled")
        return selectors.printer_list(enabled=None if enabled is None else enabled in ("1", "true"))

    @extend_schema(operation_id="printers_list", responses={200: PrinterBody(many=True)})
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([selectors.printer_body(p) for p in page])

    @extend_schema(request=PRINTER_REQUEST, responses={201: PrinterBody})
    def post(self, request):
        values = request_parse(PrinterInput, request)
        values.pop("reason", None)
        printer = services.printer_create(actor=request.user, **values)
        return Response(selectors.printer_body(printer), status=status.HTTP_201_CREATED)


class PrinterDetailView(APIView):
    permission_classes = [PrinterReaders, RoleWriters]
    write_roles = (roles.LAB_STAFF,)  # lab staff manage printers

    @extend_schema(responses={200: PrinterBody})
    def get(self, request, pk: int):
        return Response(selectors.printer_body(selectors.printer_get(pk)))

    @extend_schema(request=PrinterInput(partial=True), responses={200: PrinterBody})
    def patch(self, request, pk: int):
        values = request_parse(PrinterInput, request, partial=True)
        reason = values.pop("reason", "")
        printer = services.printer_update(printer=pk, actor=request.user, reason=reason, **values)
        return Response(selectors.printer_body(printer))


urlpatterns = [
    path("printers/", PrinterListView.as_view(), name="api-printer-list"),
    path("printers/<int:pk>/", PrinterDetailView.as_view(), name="api-printer-detail"),
]
