"""Investigations over the API: list, detail, progress, close."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from cmlims.api.parsing import request_parse
from cmlims.audit import to_jsonable
from cmlims.investigations.models import Investigation, Phase
from cmlims.investigations.selectors import investigation_get, investigation_list
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
        "product_disposition": inv.product_disposition,
        "opened_by": inv.opened_by.get_username() if inv.opened_by_id else None,
        "opened_at": to_jsonable(inv.opened_at),
        "closed_by": inv.closed_by.get_username() if inv.closed_by_id else None,
        "closed_at": to_jsonable(inv.closed_at),
    }


class InvestigationSerializer(serializers.Serializer):
    """Renders ``investigation_body`` (read-only)."""

    def to_representation(self, instance):
        return investigation_body(instance)


class InvestigationListQuery(serializers.Serializer):
    status = serializers.CharField(required=False, allow_blank=True, default="", help_text="open or closed")


class InvestigationListView(ListAPIView):
    serializer_class = InvestigationSerializer

    @extend_schema(parameters=[InvestigationListQuery])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        qs = investigation_list()
        status = request_parse(InvestigationListQuery, self.request, query=True)["status"]
        return qs.filter(status=status) if status else qs


class InvestigationDetailView(APIView):
    class UpdateInput(serializers.Serializer):
        phase = serializers.ChoiceField(choices=Phase.choices, required=False)
        root_cause = serializers.CharField(required=False, allow_blank=True)
        related_lots_checked = serializers.CharField(required=False, allow_blank=True)
        details = serializers.CharField(required=False, allow_blank=True)
        product_disposition = serializers.CharField(required=False, allow_blank=True)  # checked by the service
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        return Response(investigation_body(investigation_get(pk)))

    @extend_schema(request=UpdateInput, responses={200: OpenApiTypes.OBJECT})
    def patch(self, request, pk: int):
        inv = investigation_update(investigation=investigation_get(pk), actor=request.user,
                                   **request_parse(self.UpdateInput, request))
        return Response(investigation_body(inv))


class InvestigationCloseView(APIView):
    class Input(serializers.Serializer):
        conclusion = serializers.CharField(allow_blank=True)
        root_cause = serializers.CharField(required=False, allow_blank=True)
        related_lots_checked = serializers.CharField(required=False, allow_blank=True)
        product_disposition = serializers.CharField(required=False, allow_blank=True)  # checked by the service

    @extend_schema(request=Input, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        inv = investigation_close(investigation=investigation_get(pk), actor=request.user,
                                  **request_parse(self.Input, request))
        return Response(investigation_body(inv))
