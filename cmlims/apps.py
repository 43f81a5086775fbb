from django.apps import AppConfig
from django.db.models.signals import post_migrate

from cmlims import roles


class CmlimsConfig(AppConfig):
    name = "cmlims"
    verbose_name = "Records, signatures and documents"
    default_auto_field = "django.db.models.BigAutoField"

    # Which role holds which permission of this app (see cmlims/roles.py).
    role_permissions = {
        roles.LAB_STAFF: {"cmlims.view_auditentry"},
        roles.QC_OFFICER: {"cmlims.view_auditentry", "cmlims.view_loginlock"},  # and clears them (cmlims.logins)
        roles.SHIPPING_COORDINATOR: {"cmlims.view_auditentry"},
        roles.INTEGRATION: set(),
    }

    def ready(self) -> None:
        from cmlims import anchors, signals  # noqa: F401  (auth events into the audit trail; anchor registry)
        from cmlims.lookups import lookups_register

        lookups_register()

        post_migrate.connect(roles.sync_role_permissions, dispatch_uid="cmlims_sync_roles")
