from django.apps import AppConfig


class QcConfig(AppConfig):
    name = "qc"
    verbose_name = "Quality control"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions: dict[str, set[str]] = {}
