"""Reads of printers and print outcomes."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet

from cmlims.exceptions import NotFound
from cmlims.printing.models import PrintDispatch, Printer


def printer_list(*, enabled: bool | None = None) -> QuerySet[Printer]:
    printers = Printer.objects.all()
    return printers if enabled is None else printers.filter(enabled=enabled)


def printers_for_stock(*, width_mm: float, height_mm: float) -> QuerySet[Printer]:
    """Enabled printers holding stock of this size (within the tolerance ``printer_for_labels`` allows)."""
    from cmlims.printing.services import STOCK_TOLERANCE_MM

    w, h = Decimal(str(width_mm)), Decimal(str(height_mm))
    return Printer.objects.filter(
        enabled=True, stock_width_mm__gte=w - STOCK_TOLERANCE_MM, stock_width_mm__lte=w + STOCK_TOLERANCE_MM,
        stock_height_mm__gte=h - STOCK_TOLERANCE_MM, stock_height_mm__lte=h + STOCK_TOLERANCE_MM)


def printer_get(pk: int) -> Printer:
    printer = Printer.objects.filter(pk=pk).first()
    if printer is None:
        raise NotFound(f"Printer {pk} does not exist.")
    return printer


def printer_body(printer: Printer) -> dict:
    return {
        "id": printer.pk, "name": printer.name, "location": printer.location, "kind": printer.kind,
        "address": printer.address, "stock_width_mm": str(printer.stock_width_mm),
        "stock_height_mm": str(printer.stock_height_mm), "stock_material": printer.stock_material,
        "enabled": printer.enabled,
    }


def job_dispatch(job) -> PrintDispatch | None:
    """The job's dispatch (read with ``select_related("dispatch__printer")`` for no extra query), or None."""
    try:
        return job.dispatch
    except ObjectDoesNotExist:
        return None


def dispatch_body(dispatch: PrintDispatch | None) -> dict | None:
    if dispatch is None:
        return None
    return {"printer": dispatch.printer_id, "printer_name": dispatch.printer.name, "status": dispatch.status,
            "labels_confirmed": dispatch.labels_confirmed, "error": dispatch.error or None,
            "sent_at": dispatch.sent_at}
