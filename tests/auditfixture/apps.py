from django.apps import AppConfig


class AuditFixtureConfig(AppConfig):
    """Test-only models that exercise the audit core generically (installed by config.settings.test only).

    The real GMP models (lots, vials, results…) set their own ``change_requires_reason``; these two give
    the audit core's own tests a parent/child pair whose rules the tests control."""

    name = "tests.auditfixture"
    label = "auditfixture"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cmlims.timeline import register_timeline

        from .models import FixtureRecord

        register_timeline(FixtureRecord, children=lambda record: [record.samples.all()])
