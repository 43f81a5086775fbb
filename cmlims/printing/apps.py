from django.apps import AppConfig

from cmlims.roles import LAB_STAFF, QC_OFFICER, SHIPPING_COORDINATOR


class PrintingConfig(AppConfig):
    """Printers on the bench (Zebra ZPL over raw TCP, office printers over IPP) and the print outcome of jobs."""

    name = "cmlims.printing"
    label = "printing"
    verbose_name = "Printers"
    default_auto_field = "django.db.models.BigAutoField"
    # Lab staff manage printers; everybody who prints labels sees them and the print outcomes.
    role_permissions: dict[str, set[str]] = {
        LAB_STAFF: {"printing.view_printer", "printing.add_printer", "printing.change_printer",
                    "printing.view_printdispatch"},
        QC_OFFICER: {"printing.view_printer", "printing.view_printdispatch"},
        SHIPPING_COORDINATOR: {"printing.view_printer", "printing.view_printdispatch"},
    }
