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
        roles.INTEGRATION: set(),  # integration reads lots and results only (role table)
    }

    def ready(self) -> None:
        from cmlims.esign.services import register_content_checker, signature_status
        from cmlims.investigations.deviations import DEVIATION_CLOSE_V1, deviation_content
        from cmlims.investigations.services import INVESTIGATION_CLOSE_V1, investigation_close_content

        # "Changed after signing" for a closing signature: the closed investigation is rebuilt by the same list.
        register_content_checker(INVESTIGATION_CLOSE_V1.split("/")[0] + "/",
                                 lambda inv, sig: signature_status(sig, investigation_close_content(inv)))
        register_content_checker(DEVIATION_CLOSE_V1.split("/")[0] + "/",
                                 lambda inv, sig: signature_status(sig, deviation_content(inv)))
