from django.apps import AppConfig


class EsignConfig(AppConfig):
    """Part 11 electronic signatures and the signing lockout."""

    name = "cmlims.esign"
    label = "esign"
    verbose_name = "Electronic signatures"
    default_auto_field = "django.db.models.BigAutoField"
    role_permissions: dict[str, set[str]] = {}
