from django.apps import AppConfig

from cmlims import roles


class InvestigationsConfig(AppConfig):
    """Deviations and out-of-specification investigations, on any subject (result, lot, shipment)."""

    name = "cmlims.investigations"
    label = "investigations"
    verbose_name = "Investigations"
    default_auto_field = "django.db.models.BigAutoField"
    # Opened by rules (failing result, excursion); deviations raised by lab staff and QC; progressed and closed
    # by QC officers.
    role_permissions = {
        roles.LAB_STAFF: {"investigations.view_investigation", "investigations.add_investigation"},
        roles.QC_OFFICER: {"investigations.view_investigation", "investigations.add_investigation",
                           "investigations.change_investigation"},
        roles.SHIPPING_COORDINATOR: {"investigations.view_investigation"},
        roles.INTEGRATION: {"investigations.view_investigation"},
    }
