from django.apps import AppConfig


class InvestigationsConfig(AppConfig):
    """Deviations and out-of-specification investigations, on any subject (result, lot, shipment)."""

    name = "cmlims.investigations"
    label = "investigations"
    verbose_name = "Investigations"
    default_auto_field = "django.db.models.BigAutoField"
    role_permissions: dict[str, set[str]] = {}
