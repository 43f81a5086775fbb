from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    """Document jobs (labels, certificates, batch records, packing lists) and label prints."""

    name = "cmlims.documents"
    label = "documents"
    verbose_name = "Labels and documents"
    default_auto_field = "django.db.models.BigAutoField"
    role_permissions: dict[str, set[str]] = {}
