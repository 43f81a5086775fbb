"""Investigations over the API: list, detail, progress, close."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cmlims import roles
from cmlims.api.parsing import request_parse
from cmlims.api.permissions import RoleWriters, WorkingRoleReaders
from cmlims.api.responses import SignatureManifestBody
from cmlims.api.schema import signing_request
from cmlims.audit import to_jsonable
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_current_status, signature_manifest
from cmlims.investigations.deviations import (
    RAISE_ROLES,
    deviation_close,
    deviation_raise,
    deviation_subject_get,
    deviation_subject_types,
)
from cmlims.investigations.models import Disposition, Investigation, Kind, Phase, Status
from cmlims.investigations.selectors import deviations_open, investigation_get, investigation_list
from cmlims.investigations.services import investigation_close, investigation_update


def investigation_body(inv: Investigation) -> dict:
    return {
        "id": inv.pk,
        "number": inv.number,
        "kind": inv.kind,
        "title": inv.title,
        "details": inv.details,
        "subject": {"type": inv.content_type.model_class()._meta.label_lower if inv.content_type_id else "",
                    "id": inv.object_id, "repr": inv.subject_repr},
        "phase": inv.phase,
        "status": inv.status,
        "root_cause": inv.root_cause,
        "related_lots_checked": inv.related_lots_checked,
        "conclusion": inv.conclusion,
        "impact_assessment": inv.impact_assessment,
        "product_disposition": inv.product_disposition,
        "opened_by": inv.opened_by.get_username() if inv.opened_by_id else None,
        "opened_at": to_jsonable(inv.opened_at),
        "closed_by": inv.closed_by.get_username() if inv.closed_by_id else None,
        "closed_at": to_jsonable(inv.closed_at),
        "closing_signature": closing_signature_body(inv),
    }


def closing_signature_body(inv: Investigation) -> dict | None:
    """The signature that closed it (11.50: printed name, time, meaning), and whether it changed since."""
    signature = inv.closing_signature if inv.closing_signature_id else None
    if signature is None:
        return None
    return signature_manifest(signature, signature_current_status(signature, inv))


class InvestigationSubjectBody(serializers.Serializer):
    type = serializers.CharField(help_text="the record's model label, e.g. batches.cmlot")
    id = serializers.CharField()
    repr = serializers.CharField()


class InvestigationSerializer(serializers.Serializer):
    """Renders ``investigation_body`` (read-only); the fields say what it holds, for the schema."""

    id = serializers.IntegerField()
    number = serializers.CharField()
    kind = serializers.ChoiceField(choices=Kind.choices)
    title = serializers.CharField()
    details = serializers.CharField()
    subject = InvestigationSubjectBody()
    phase = serializers.ChoiceField(choices=Phase.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    root_cause = serializers.CharField()
    related_lots_checked = serializers.CharField()
    conclusion = serializers.CharField()
    impact_assessment = serializers.CharField()
    product_disposition = serializers.ChoiceField(choices=[("", "not decided"), *Disposition.choices])
    opened_by = serializers.CharField(allow_null=True)
    opened_at = serializers.DateTimeField(read_only=True)
    closed_by = serializers.CharField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True, read_only=True)
    closing_signature = SignatureManifestBody(allow_null=True, read_only=True)

    def to_representation(self, instance):
        return investigation_body(instance)


class InvestigationListQuery(serializers.Serializer):
    status = serializers.CharField(required=False, allow_blank=True, default="", help_text="open or closed")


class InvestigationListView(ListAPIView):
    serializer_class = InvestigationSerializer
    permission_classes = [IsAuthenticated, WorkingRoleReaders]  # integration reads lots and results only

    @extend_schema(parameters=[InvestigationListQuery])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = investigation_list()
        status = request_parse(InvestigationListQuery, self.request, query=True)["status"]
        return qs.filter(status=status) if status else qs


class InvestigationDetailView(APIView):
    permission_classes = [IsAuthenticated, WorkingRoleReaders, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    class UpdateInput(serializers.Serializer):
        phase = serializers.ChoiceField(choices=Phase.choices, required=False)
        root_cause = serializers.CharField(required=False, allow_blank=True)
        related_lots_checked = serializers.CharField(required=False, allow_blank=True)
        details = serializers.CharField(required=False, allow_blank=True)
        product_disposition = serializers.CharField(required=False, allow_blank=True)  # checked by the service
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses={200: InvestigationSerializer})
    def get(self, request, pk: int):
        return Response(investigation_body(investigation_get(pk)))

    @extend_schema(request=UpdateInput, responses={200: InvestigationSerializer})
    def patch(self, request, pk: int):
        inv = investigation_update(investigation=investigation_get(pk), actor=request.user,
                                   **request_parse(self.UpdateInput, request))
        return Response(investigation_body(inv))


class InvestigationCloseView(APIView):
    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    class Input(serializers.Serializer):
        conclusion = serializers.CharField(allow_blank=True)
        root_cause = serializers.CharField(required=False, allow_blank=True)
        related_lots_checked = serializers.CharField(required=False, allow_blank=True)
        product_disposition = serializers.CharField(required=False, allow_blank=True)  # checked by the service
        # An OOS investigation is closed with a signature ("investigation closed"): both components.
        username = serializers.CharField(required=False, allow_blank=True, default="")
        password = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
        meaning = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=signing_request(Input, Meaning.INVESTIGATION_CLOSED),
                   responses={200: InvestigationSerializer})
    def post(self, request, pk: int):
        inv = investigation_close(investigation=investigation_get(pk), actor=request.user,
                                  **request_parse(self.Input, request))
        return Response(investigation_body(inv))


class DeviationListView(ListAPIView):
    """GET: deviations (``?status=open`` for the open ones, oldest first). POST: raise one (lab staff, QC)."""

    serializer_class = InvestigationSerializer
    permission_classes = [IsAuthenticated, WorkingRoleReaders, RoleWriters]
    write_roles = RAISE_ROLES

    class DeviationRaiseInput(serializers.Serializer):
        subject_type = serializers.ChoiceField(choices=[], help_text="the kind of record the deviation is about")
        subject_id = serializers.CharField()
        title = serializers.CharField(allow_blank=True)
        details = serializers.CharField(allow_blank=True)

        def __init__(self, *args, **kwargs):
            # the subjects the apps registered, read when the input (or the schema) is built, not at import
            super().__init__(*args, **kwargs)
            subject_types = sorted(deviation_subject_types())
            field = self.fields["subject_type"]
            field.choices = subject_types
            field.error_messages["invalid_choice"] = f"must be one of: {', '.join(subject_types)}"

    @extend_schema(parameters=[InvestigationListQuery])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        wanted = request_parse(InvestigationListQuery, self.request, query=True)["status"]
        if wanted == "open":
            return deviations_open()
        qs = investigation_list().filter(kind=Kind.DEVIATION)
        return qs.filter(status=wanted) if wanted else qs

    @extend_schema(request=DeviationRaiseInput, responses={201: InvestigationSerializer})
    def post(self, request):
        data = request_parse(self.DeviationRaiseInput, request)
        subject = deviation_subject_get(data["subject_type"], data["subject_id"])
        inv = deviation_raise(subject=subject, actor=request.user, title=data["title"], details=data["details"])
        return Response(investigation_body(inv), status=status.HTTP_201_CREATED)


class DeviationCloseView(APIView):
    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    class DeviationCloseInput(serializers.Serializer):
        root_cause = serializers.CharField(allow_blank=True)
        impact_assessment = serializers.CharField(allow_blank=True)
        conclusion = serializers.CharField(required=False, allow_blank=True, default="")
        username = serializers.CharField(allow_blank=True)
        password = serializers.CharField(allow_blank=True, trim_whitespace=False)
        meaning = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=signing_request(DeviationCloseInput, Meaning.DEVIATION_CLOSED),
                   responses={200: InvestigationSerializer})
    def post(self, request, pk: int):
        inv = deviation_close(investigation=investigation_get(pk), actor=request.user,
                              **request_parse(self.DeviationCloseInput, request))
        return Response(investigation_body(inv))
