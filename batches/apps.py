from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    verbose_name = "Manufacturing record"
    default_auto_field = "django.db.models.BigAutoField"

    role_permissions: dict[str, set[str]] = {}
