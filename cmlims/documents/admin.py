"""Admin: document jobs (read-only, live progress bar by polling, download) and label prints (read-only)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from cmlims.admin import ReadOnlyAdmin
from cmlims.admin_paging import CappedCountPaginator
from cmlims.documents.models import DocumentJob, JobStatus, LabelDisposition, LabelPrint
from cmlims.documents.selectors import document_job_get_for_user
from cmlims.documents.services import document_job_download
from cmlims.exceptions import ApplicationError
from cmlims.printing.selectors import job_dispatch


def _param_text(value) -> str:
    if isinstance(value, list):
        shown = ", ".join(str(v) for v in value[:5])
        return f"{len(value)}: {shown}{' …' if len(value) > 5 else ''}"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items())
    return str(value)


@admin.register(DocumentJob)
class DocumentJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind_shown", "subject", "status", "progress_display", "requested_by", "created_at",
                    "download_link")
    list_filter = ("status", "kind")
    search_fields = ("subject_repr", "kind", "sha256")
    list_select_related = ("requested_by",)

    fields = ("kind_shown", "subject", "status", "progress_display", "print_outcome", "download_link", "requested_by",
              "params_shown", "created_at", "started_at", "finished_at", "attempts", "send_count", "last_sent_at",
              "send_error", "heartbeat_at", "lease_owner", "lease_expires_at", "sha256", "chain_sequence", "chain_hash",
              "error")
    readonly_fields = fields

    @admin.display(description="document", ordering="kind")
    def kind_shown(self, job: DocumentJob):
        return job.kind_name

    @admin.display(description="for", ordering="subject_repr")
    def subject(self, job: DocumentJob):
        return job.subject_repr or "—"

    @admin.display(description="asked for")
    def params_shown(self, job: DocumentJob):
        rows = [(key.replace("_", " "), _param_text(value)) for key, value in sorted((job.params or {}).items())]
        if not rows:
            return "—"
        return format_html("<dl>{}</dl>", format_html_join("", "<dt>{}</dt><dd>{}</dd>", rows))

    @admin.display(description="printer")
    def print_outcome(self, job: DocumentJob):
        """What the printer answered: sent (labels it confirmed) or failed with its reason; a file otherwise."""
        dispatch = job_dispatch(job)
        if dispatch is None:
            return "— (a file: download it)"
        outcome = {"queued": "waiting for the printer", "sent": "printed", "failed": "FAILED"}[dispatch.status]
        text = format_html("<strong>{}</strong> on {} ({}): {} label(s) confirmed", outcome, dispatch.printer.name,
                           dispatch.printer.location, dispatch.labels_confirmed)
        return format_html("{} — {}", text, dispatch.error) if dispatch.error else text

    @admin.display(description="progress")
    def progress_display(self, job: DocumentJob):
        return format_html(
            '<progress max="100" value="{}" style="width:12em" aria-label="progress">{}%</progress> {}%',
            job.progress, job.progress, job.progress,
        )

    @admin.display(description="download")
    def download_link(self, job: DocumentJob):
        if job.status != JobStatus.DONE:
            return "—"
        url = reverse("admin:documents_documentjob_download", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.output_name or "download")

    def get_urls(self):
        download = self.admin_site.admin_view(self.download_view)
        return [path("<int:pk>/download/", download, name="documents_documentjob_download"), *super().get_urls()]

    def download_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            job = document_job_get_for_user(job_id=pk, user=request.user)
        except ApplicationError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return HttpResponseRedirect(reverse("admin:documents_documentjob_changelist"))
        if job.status != JobStatus.DONE:
            self.message_user(request, f"Job {job.pk} is {job.status}.", level=messages.WARNING)
            return HttpResponseRedirect(reverse("admin:documents_documentjob_change", args=[job.pk]))
        handle = document_job_download(job=job, actor=request.user, via="admin")
        return FileResponse(handle, as_attachment=True, filename=job.output_name,
                            content_type=job.content_type)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        extra = {"job_polling": job is not None and not job.finished, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)


@admin.register(LabelPrint)
class LabelPrintAdmin(ReadOnlyAdmin):
    paginator = CappedCountPaginator  # a row per label printed, for years
    list_display = ("printed_at", "template", "template_version", "kind", "output_format", "subject_id", "item_key",
                    "copies", "printed_by", "reprint_reason", "job")
    list_filter = ("template", "kind", "output_format")
    search_fields = ("item_key", "subject_id")
    list_select_related = ("printed_by", "job")


@admin.register(LabelDisposition)
class LabelDispositionAdmin(ReadOnlyAdmin):
    """Labels destroyed or returned (recorded on the lot's labels page, or by a reprint for those it replaced)."""

    list_display = ("recorded_at", "template", "kind", "subject_id", "item_key", "disposition", "count",
                    "recorded_by", "reason", "replaced_by")
    list_filter = ("template", "kind", "disposition")
    search_fields = ("item_key", "subject_id", "reason")
    list_select_related = ("recorded_by", "replaced_by")
