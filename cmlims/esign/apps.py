from django.apps import AppConfig

from cmlims import roles


class EsignConfig(AppConfig):
    """Part 11 electronic signatures and the signing lockout."""

    name = "cmlims.esign"
    label = "esign"
    verbose_name = "Electronic signatures"
    default_auto_field = "django.db.models.BigAutoField"
    # Signatures are created by the signing services only; everyone may read them.
    role_permissions = {
        roles.LAB_STAFF: {"esign.view_signature"},
        roles.QC_OFFICER: {"esign.view_signature", "esign.view_signingfailure"},
        roles.SHIPPING_COORDINATOR: {"esign.view_signature"},
        roles.INTEGRATION: {"esign.view_signature"},
    }

    def ready(self) -> None:
        from cmlims.audit import register_append_listener
        from cmlims.esign.services import signature_checks_mark_stale

        # Every audited write tells the stored signature checks which records changed (list pages read them).
        register_append_listener(signature_checks_mark_stale)
