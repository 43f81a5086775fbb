"""Document job status and download; apps' endpoints that request documents answer with ``job_accepted``."""

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from cmlims.api.responses import ChainHeadBody
from cmlims.documents.models import DocumentJob, JobStatus
from cmlims.documents.selectors import document_job_get_for_user, document_job_payload
from cmlims.documents.services import document_job_download
from cmlims.printing.models import DispatchStatus

JobAcceptedSerializer = inline_serializer(
    "DocumentJobAccepted", {"job": serializers.IntegerField(), "url": serializers.CharField()}
)
JobStatusSerializer = inline_serializer(
    "DocumentJobStatus",
    {
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "status": serializers.ChoiceField(choices=JobStatus.choices),
        "progress": serializers.IntegerField(min_value=0, max_value=100),
        "attempts": serializers.IntegerField(),
        "subject": serializers.CharField(),
        "requested_by": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "finished_at": serializers.DateTimeField(allow_null=True),
        "download": serializers.CharField(allow_null=True),
        "filename": serializers.CharField(allow_null=True),
        "sha256": serializers.CharField(allow_null=True),
        "chain_head": ChainHeadBody(allow_null=True),
        "error": serializers.CharField(allow_null=True),
        "print": inline_serializer("PrintDispatchBody", {
            "printer": serializers.IntegerField(), "printer_name": serializers.CharField(),
            "status": serializers.ChoiceField(choices=DispatchStatus.choices),
            "labels_confirmed": serializers.IntegerField(), "error": serializers.CharField(allow_null=True),
            "sent_at": serializers.DateTimeField(allow_null=True),
        }, allow_null=True, help_text="null unless the job was sent to a printer"),
    },
)



class LabelReconciliationRowBody(serializers.Serializer):
    """``cmlims.documents.selectors.ReconciliationRow``: labels of one template and kind (211.125/211.130)."""

    template = serializers.CharField()
    kind = serializers.CharField()
    items_labelled = serializers.IntegerField()
    labels_issued = serializers.IntegerField()
    reprints = serializers.IntegerField()
    used = serializers.IntegerField()
    destroyed = serializers.IntegerField(help_text="recorded destroyed, labels replaced by reprints included")
    returned = serializers.IntegerField()
    unaccounted = serializers.IntegerField(help_text="issued − used − destroyed − returned: must be 0")
    unexpected = serializers.ListField(child=serializers.CharField())
    unlabelled = serializers.IntegerField(help_text="items without a label of this kind")


def job_accepted(job: DocumentJob) -> Response:
    """202 {"job": id, "url": status URL}: the answer of every endpoint that requests a document."""
    return Response({"job": job.pk, "url": reverse("api-document-job", args=[job.pk])}, status=202)


class DocumentJobView(APIView):
    """Status of a document job: queued | running | done | failed, progress 0-100, download when done."""

    @extend_schema(responses={200: JobStatusSerializer})
    def get(self, request, pk: int):
        job = document_job_get_for_user(job_id=pk, user=request.user)
        return Response(document_job_payload(job, download_url=reverse("api-document-job-download", args=[job.pk])))


class DocumentJobDownloadView(APIView):
    """The generated file (same permission as requesting it); ``X-Content-SHA256`` carries its hash."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        job = document_job_get_for_user(job_id=pk, user=request.user)
        handle = document_job_download(job=job, actor=request.user, via="api")
        response = FileResponse(handle, as_attachment=True, filename=job.output_name,
                                content_type=job.content_type)
        response["X-Content-SHA256"] = job.sha256
        return response
