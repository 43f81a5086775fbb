"""Manufacturing API: thin views. Each parses input, calls one service or selector and renders."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cmlims import roles
from cmlims.api.fields import NO_OFFSET, OUT_OF_RANGE, offset_missing, utc_out_of_range
from cmlims.api.parsing import ReasonInput, request_parse, request_reason
from cmlims.api.permissions import RoleWriters
from cmlims.api.schema import signing_request
from cmlims.esign.models import Meaning

from .. import models as m
from .. import selectors
from ..services import cultures, drying, lots, packaging, products, records, sources
from . import serializers as s
from .permissions import LotReaders, TraceReaders


def _created(obj) -> Response:
    return Response(s.record_out(obj), status=status.HTTP_201_CREATED)


def _ok(obj) -> Response:
    return Response(s.record_out(obj))


# --- lots: list, detail, transitions --------------------------------------------------------------------


class IdField(forms.IntegerField):
    """A record id as the database stores it (a bigger number is a 400, not an overflow)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=2**63 - 1, **kwargs)


class IdFilter(django_filters.NumberFilter):
    field_class = IdField


class UtcDateTimeField(IsoDateTimeField):
    """An ISO time with its zone that still exists in UTC (0001-01-01T00:00+01:00 does not). A time without
    a zone is refused: which zone the client meant is a guess (the server's is not necessarily the lab's)."""

    def to_python(self, value):
        if offset_missing(value):
            raise forms.ValidationError(NO_OFFSET)
        return super().to_python(value)

    def clean(self, value):
        parsed = super().clean(value)
        if parsed is not None and utc_out_of_range(parsed):
            raise forms.ValidationError(OUT_OF_RANGE)
        return parsed


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class LotFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=m.LotStatus.choices)
    product = IdFilter(field_name="product_id")
    gtin = django_filters.CharFilter(field_name="product__gtin")
    on_hold = django_filters.BooleanFilter()
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(method="filter_search", label="lot number, vial serial or donor code")

    class Meta:
        model = m.CMLot
        fields = ["status", "product", "gtin", "on_hold", "created_after", "created_before", "search"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(selectors.lot_search_q(value)) if value.strip() else queryset


class LotListView(generics.ListAPIView):
    """CM lots (cursor pagination, newest first) with vial counts by status and the release signature.

    POST pools harvests into a new lot (lab staff)."""

    permission_classes = [IsAuthenticated, LotReaders, RoleWriters]
    write_roles = (roles.LAB_STAFF,)
    serializer_class = s.LotSerializer
    filterset_class = LotFilter

    def get_queryset(self):
        return selectors.lot_list_values()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        signoffs = selectors.lot_signoffs(page)
        return self.get_paginated_response(
            s.lot_list_items(page, signoffs=signoffs, releases=selectors.lot_releases(page, signoffs)))

    @extend_schema(request=s.PoolInput, responses={201: s.LotDetailSerializer})
    def post(self, request):
        data = request_parse(s.PoolInput, request)
        lot = lots.lot_pool(
            product=data["product"], actor=request.user, pooled_at=data.get("pooled_at"), reason=data["reason"],
            contributions=[lots.Contribution(harvest_id=c["harvest"], volume_ml=c["volume_ml"])
                           for c in data["contributions"]],
        )
        return Response(_lot_detail(lot.lot_number), status=status.HTTP_201_CREATED)


def _lot_detail(lot_number: str) -> dict:
    lot = selectors.lot_get(lot_number, selectors.lot_detail_queryset())
    signoffs = selectors.lot_signoffs([lot], live=True)  # a lot's own page: checked from its records now
    return s.LotDetailSerializer(lot, context={"signoffs": signoffs,
                                               "releases": selectors.lot_releases([lot], signoffs)}).data


class LotDetailView(APIView):
    """One lot with its genealogy (donors, banks, cultures, harvests with volumes), processing, freeze-drying
    and packaging summary."""

    permission_classes = [IsAuthenticated, LotReaders]

    @extend_schema(responses=s.LotDetailSerializer)
    def get(self, request, lot_number: str):
        return Response(_lot_detail(lot_number))


class LotTransitionView(APIView):
    """Move a lot along the rule table: 409 with ``code`` and ``conditions`` when the move is not allowed."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.LAB_STAFF, roles.QC_OFFICER)  # each target's rule narrows it

    @extend_schema(request=s.TransitionInput, responses=s.LotDetailSerializer)
    def post(self, request, lot_number: str):
        data = request_parse(s.TransitionInput, request)
        lots.lot_transition(lot=selectors.lot_get(lot_number), to=data["to"], actor=request.user, reason=data["reason"])
        return Response(_lot_detail(lot_number))


class LotStepView(APIView):
    """POST a processing step of a lot: ``contributions``, ``filtration``, ``concentration``, ``verifications``,
    ``freeze-drying`` (load the dryer), ``packaging`` or ``void``."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.LAB_STAFF,)

    step = ""
    inputs = {
        "contributions": s.ContributionInput, "filtration": s.FiltrationInput, "concentration": s.ConcentrationInput,
        "verifications": s.LotStepVerifyInput, "freeze-drying": s.LyophilisationRunInput,
        "packaging": s.PackagingInput, "void": s.VoidInput,
    }

    def get_serializer_class(self):  # for the OpenAPI schema
        return self.inputs[self.step]

    def response_schema(self, method: str) -> dict:  # for the OpenAPI schema: the record a step makes, or the lot
        made = {"freeze-drying": m.LyophilisationRun, "packaging": m.PackagingRun}.get(self.step)
        return {201: s.record_serializer(made)} if made else {200: s.LotDetailSerializer}

    def post(self, request, lot_number: str):
        lot = selectors.lot_get(lot_number)
        actor, reason = request.user, request_reason(request)
        data = request_parse(self.inputs[self.step], request)
        if self.step == "contributions":
            lots.lot_contribution_add(lot=lot, harvest_id=data["harvest"], volume_ml=data["volume_ml"], actor=actor,
                                      reason=reason)
        elif self.step == "filtration":
            lots.lot_record_filtration(lot=lot, actor=actor, reason=reason, **data)
        elif self.step == "concentration":
            lots.lot_record_concentration(lot=lot, actor=actor, reason=reason, **data)
        elif self.step == "verifications":
            lots.lot_step_verify(lot=lot, step=data["step"], actor=actor, reason=data["reason"])
        elif self.step == "freeze-drying":
            run = drying.lyophilisation_run_start(lot=lot, actor=actor, reason=reason, **data)
            return _created(run)
        elif self.step == "packaging":
            run = packaging.packaging_record(lot=lot, actor=actor, reason=reason, **data)
            return _created(run)
        elif self.step == "void":
            lots.lot_void(lot=lot, actor=actor, reason=data["reason"])
        return Response(_lot_detail(lot_number))


# --- traceability ----------------------------------------------------------------------------------------


class VialTraceView(APIView):
    """vial → lot → harvests → cultures → bank → donor."""

    permission_classes = [IsAuthenticated, TraceReaders]

    @extend_schema(responses=s.VialTraceBody)
    def get(self, request, serial: str):
        return Response(s.decimals_as_text(selectors.vial_trace(serial)))


class DonorTraceView(APIView):
    """donor → lots → vials, and where the vials went."""

    permission_classes = [IsAuthenticated, TraceReaders]

    @extend_schema(responses=s.DonorTraceBody)
    def get(self, request, code: str):
        return Response(s.decimals_as_text(selectors.donor_trace(code)))


# --- create/update of each manufacturing step ------------------------------------------------------------


class CreateUpdateView(APIView):
    """POST creates (``create``), PATCH corrects (``update``) — both the same services the admin calls."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.LAB_STAFF,)  # master data and manufacturing steps

    model: type = None
    input: type = None
    schema_input: type | None = None  # what the schema says the body takes, where ``input`` parses more
    lookup: str = "pk"
    create = None  # service(actor=, reason=, **fields)
    update = None  # service(<record kwarg>=obj, actor=, reason=, **fields)
    record_kwarg = ""

    def get_serializer_class(self):  # for the OpenAPI schema
        return self.schema_input or self.input

    def response_schema(self, method: str) -> dict:  # for the OpenAPI schema: the record made or corrected
        return {201 if method == "POST" else 200: s.record_serializer(self.model)}

    def post(self, request, **kwargs):
        data = request_parse(self.input, request)
        return _created(type(self).create(actor=request.user, reason=request_reason(request), **data))

    def patch(self, request, **kwargs):
        obj = selectors.record_get(self.model, **{self.lookup: kwargs["key"]})
        data = request_parse(self.input, request, instance=obj, partial=True)
        return _ok(type(self).update(**{self.record_kwarg: obj}, actor=request.user, reason=request_reason(request),
                                     **data))


class ProductView(CreateUpdateView):
    model, input, create, update, record_kwarg = (m.Product, s.ProductInput, products.product_create,
                                                  products.product_update, "product")


class ProductLimitsApproveView(APIView):
    """POST: a QC officer who did not change them puts a product's process limits in force, signed."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    @extend_schema(request=signing_request(s.ProductLimitsApproveInput, Meaning.PRODUCT_LIMITS_APPROVED),
                   responses={200: s.ProductLimitsBody})
    def post(self, request, key: int):
        product = selectors.record_get(m.Product, pk=key)
        product = products.product_limits_approve(product=product, actor=request.user,
                                                  **request_parse(s.ProductLimitsApproveInput, request))
        return Response(s.product_limits_body(product))


class StorageLocationView(CreateUpdateView):
    model, input, lookup, create, update, record_kwarg = (
        m.StorageLocation, s.StorageLocationInput, "code", products.storage_location_create,
        products.storage_location_update, "location")


class DonorView(CreateUpdateView):
    model, input, lookup, create, update, record_kwarg = (
        m.CellSource, s.CellSourceInput, "code", sources.cell_source_create, sources.cell_source_update, "source")
    schema_input = s.CellSourceRequest


class DonorEligibilityView(APIView):
    """POST: a QC officer determines the donor eligible or ineligible, signed "eligibility determined"."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    @extend_schema(request=signing_request(s.DonorEligibilityInput, Meaning.ELIGIBILITY_DETERMINED),
                   responses={200: s.DonorEligibilityBody})
    def post(self, request, key: str):
        source = selectors.record_get(m.CellSource, code=key)
        source = sources.donor_eligibility_determine(source=source, actor=request.user,
                                                     **request_parse(s.DonorEligibilityInput, request))
        return Response(s.donor_eligibility_body(source))


class CellBankView(CreateUpdateView):
    model, input, lookup, create, update, record_kwarg = (
        m.CellBank, s.CellBankInput, "code", sources.cell_bank_create, sources.cell_bank_update, "bank")


class CultureView(CreateUpdateView):
    model, input, lookup, update, record_kwarg = (
        m.Culture, s.CultureInput, "code", cultures.culture_update, "culture")

    def post(self, request, **kwargs):
        data = request_parse(self.input, request)
        return _created(cultures.culture_create(actor=request.user, reason=request_reason(request), **data))


class PassageView(CreateUpdateView):
    model, input, update, record_kwarg = (m.Passage, s.PassageInput, cultures.passage_update, "passage")

    def post(self, request, **kwargs):
        culture = selectors.record_get(m.Culture, code=kwargs["key"])
        data = request_parse(self.input, request)
        return _created(cultures.passage_record(culture=culture, actor=request.user, reason=request_reason(request),
                                                **data))


class HarvestView(CreateUpdateView):
    model, input, update, record_kwarg = (m.Harvest, s.HarvestInput, cultures.harvest_update, "harvest")

    def post(self, request, **kwargs):
        culture = selectors.record_get(m.Culture, code=kwargs["key"])
        data = request_parse(self.input, request)
        return _created(cultures.harvest_record(culture=culture, actor=request.user, reason=request_reason(request),
                                                **data))


class CultureStepView(APIView):
    """``conditioning`` (active → conditioning) or ``close`` (with a reason)."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.LAB_STAFF,)

    step = ""

    def get_serializer_class(self):  # for the OpenAPI schema
        return s.ConditioningInput if self.step == "conditioning" else s.VoidInput

    def response_schema(self, method: str) -> dict:  # for the OpenAPI schema
        return {200: s.record_serializer(m.Culture)}

    def post(self, request, key: str):
        culture = selectors.record_get(m.Culture, code=key)
        if self.step == "conditioning":
            data = request_parse(s.ConditioningInput, request)
            culture = cultures.culture_start_conditioning(culture=culture, actor=request.user,
                                                          reason=request_reason(request), **data)
        else:
            culture = cultures.culture_close(culture=culture, actor=request.user,
                                             reason=request_parse(s.VoidInput, request)["reason"])
        return _ok(culture)


class RunView(CreateUpdateView):
    model, input, lookup, update, record_kwarg = (
        m.LyophilisationRun, s.LyophilisationRunInput, "run_number", drying.lyophilisation_run_update, "run")


class RunStepView(APIView):
    """``phases`` (record one phase) or ``complete`` (close the run)."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.LAB_STAFF,)

    step = ""

    def get_serializer_class(self):  # for the OpenAPI schema
        return s.LyophilisationPhaseInput if self.step == "phases" else s.RunCompleteInput

    def response_schema(self, method: str) -> dict:  # for the OpenAPI schema: the phase recorded, or the run
        if self.step == "phases":
            return {201: s.record_serializer(m.LyophilisationPhase)}
        return {200: s.record_serializer(m.LyophilisationRun)}

    def post(self, request, key: str):
        run = selectors.record_get(m.LyophilisationRun, run_number=key)
        if self.step == "phases":
            data = request_parse(s.LyophilisationPhaseInput, request)
            return _created(drying.lyophilisation_phase_record(run=run, actor=request.user,
                                                               reason=request_reason(request), **data))
        data = request_parse(s.RunCompleteInput, request)
        return _ok(drying.lyophilisation_run_complete(run=run, actor=request.user, reason=request_reason(request),
                                                      **data))


VERIFIABLE = {
    "cell-banks": (m.CellBank, "code"), "cultures": (m.Culture, "code"), "passages": (m.Passage, "pk"),
    "harvests": (m.Harvest, "pk"), "freeze-drying-runs": (m.LyophilisationRun, "run_number"),
    "packaging-runs": (m.PackagingRun, "run_number"),
}
VOIDABLE = {
    **VERIFIABLE, "products": (m.Product, "pk"), "storage-locations": (m.StorageLocation, "code"),
    "donors": (m.CellSource, "code"), "freeze-drying-phases": (m.LyophilisationPhase, "pk"),
}


VIALS = {"vials": (m.Vial, "serial")}


class RecordActionView(APIView):
    """POST one action on one record: the record found by its key (404 for none, whatever the key's form), then
    the body parsed by ``input`` and handed to ``service`` with the caller."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.LAB_STAFF,)  # verify, void, destroy and move a vial

    kind = ""  # which record type: a key of ``kinds``, set per route
    kinds: dict[str, tuple[type, str]] = {}  # kind -> (model, lookup field of the key in the URL)
    input: type = s.VoidInput
    service = None  # service(<record_kwarg>=record, actor=, **input)
    record_kwarg = "record"

    def get_serializer_class(self):  # for the OpenAPI schema
        return self.input

    def response_schema(self, method: str) -> dict:  # for the OpenAPI schema: the record acted on
        return {200: s.record_serializer(self.kinds[self.kind][0])}

    def post(self, request, key: str):
        model, lookup = self.kinds[self.kind]
        record = selectors.record_get(model, **{lookup: key})
        data = request_parse(self.input, request)
        return _ok(type(self).service(**{self.record_kwarg: record}, actor=request.user, **data))


class VerifyView(RecordActionView):
    """Second-person verification of a performed step (never by who performed it)."""

    kinds, input, service = VERIFIABLE, ReasonInput, records.step_verify


class VoidView(RecordActionView):
    """Void a record entered in error (with a reason); nothing is deleted."""

    kinds, service = VOIDABLE, records.record_void


class VialDestroyView(RecordActionView):
    """available | allocated → destroyed, with a reason."""

    kind, kinds, service, record_kwarg = "vials", VIALS, packaging.vial_destroy, "vial"


class VialMoveView(RecordActionView):
    """Move a vial in our storage (available | allocated) to another storage location (lab staff)."""

    kind, kinds, input, service, record_kwarg = "vials", VIALS, s.VialMoveInput, packaging.vial_move, "vial"
