from django.apps import AppConfig

from cmlims.roles import LAB_STAFF, QC_OFFICER, SHIPPING_COORDINATOR


class DocumentsConfig(AppConfig):
    """Document jobs (labels, certificates, batch records, packing lists) and label prints."""

    name = "cmlims.documents"
    label = "documents"
    verbose_name = "Labels and documents"
    default_auto_field = "django.db.models.BigAutoField"
    # Reading jobs and label prints; requesting documents is guarded per kind by each builder's check.
    role_permissions: dict[str, set[str]] = {
        role: {"documents.view_documentjob", "documents.view_labelprint", "documents.view_labeldisposition"}
        for role in (LAB_STAFF, QC_OFFICER, SHIPPING_COORDINATOR)
    }

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from cmlims.documents import builtin, tasks  # noqa: F401 - the core's builder; the periodic sweep

        # Each app's ``documents`` module registers its builders (cmlims.documents.registry).
        autodiscover_modules("documents")
