"""Printers (lab staff, audited) and sending a document job's output to its printer (the worker).

Delivery is resumable: the dispatch row counts the labels the printer confirmed, so a job re-run after a
worker was lost sends only the rest, and a dispatch already ``sent`` is never sent again.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from cmlims import roles
from cmlims.audit import Action, audit_record, audited_create, audited_update
from cmlims.exceptions import Conflict, InvalidInput, NotFound, refuse_unknown_fields
from cmlims.locks import printer_lock
from cmlims.printing.addresses import address_parse
from cmlims.printing.models import DispatchStatus, PrintDispatch, Printer, PrinterKind
from cmlims.printing.transports import PrinterError, Timeouts, ipp_print, zpl_send

EDITABLE = ("name", "location", "kind", "address", "stock_width_mm", "stock_height_mm", "stock_material", "enabled")
FORMAT_OF_KIND = {PrinterKind.ZPL: "zpl", PrinterKind.IPP: "pdf"}
A4_MM = (Decimal("210"), Decimal("297"))
STOCK_TOLERANCE_MM = Decimal("0.5")


def _check_address(kind: str, address: str) -> None:
    try:
        address_parse(kind, address)
    except ValueError as exc:
        raise InvalidInput(f"address: {exc}", fields={"address": [str(exc)]}) from None


@transaction.atomic
def printer_create(*, actor, **values: Any) -> Printer:
    roles.require_role(actor, roles.LAB_STAFF, "Adding a printer")
    refuse_unknown_fields(values, EDITABLE)
    if values.get("kind") in PrinterKind.values:
        _check_address(values["kind"], values.get("address", ""))
    return audited_create(Printer, actor=actor, **values)


@transaction.atomic
def printer_update(*, printer: Printer | int, actor, reason: str = "", **values: Any) -> Printer:
    roles.require_role(actor, roles.LAB_STAFF, "Changing a printer")
    refuse_unknown_fields(values, EDITABLE)
    try:
        locked = printer_lock(printer)
    except Printer.DoesNotExist:
        raise NotFound(f"Printer {printer} does not exist.") from None
    kind = values.get("kind", locked.kind)
    if kind in PrinterKind.values and ("kind" in values or "address" in values):
        _check_address(kind, values.get("address", locked.address))
    return audited_update(locked, actor=actor, reason=reason, **values)


# --- choosing a printer for a label job (request time) ----------------------------------------------------


def _mm(value: Decimal) -> str:
    return format(value.normalize(), "f")


def printer_for_labels(*, printer_id: Any, output_format: str | None, width_mm: float, height_mm: float,
                       layout: str = "page") -> tuple[Printer, str]:
    """The enabled printer ``printer_id`` and the format it takes; 400 naming the field otherwise.

    The printer's stock must be the template's size (an A4 sheet for an IPP printer and the a4 layout):
    a label printed on other stock is cut wrongly or scaled, so it is refused rather than printed."""
    if not isinstance(printer_id, int) or isinstance(printer_id, bool):
        raise InvalidInput("printer: must be a printer id", fields={"printer": ["must be a printer id"]})
    printer = Printer.objects.filter(pk=printer_id).first()
    if printer is None:
        raise InvalidInput(f"printer: no printer {printer_id}", fields={"printer": [f"no printer {printer_id}"]})
    if not printer.enabled:
        raise InvalidInput(f"printer: {printer.name} is disabled", fields={"printer": [f"{printer.name} is disabled"]})
    wanted = FORMAT_OF_KIND[printer.kind]
    if output_format not in (None, "", wanted):
        raise InvalidInput(f"format: printer {printer.name} prints {wanted}, not {output_format}",
                           fields={"format": [f"printer {printer.name} prints {wanted}"]})
    expected = A4_MM if printer.kind == PrinterKind.IPP and layout == "a4" else (
        Decimal(str(width_mm)), Decimal(str(height_mm)))
    stock = (printer.stock_width_mm, printer.stock_height_mm)
    if any(abs(a - b) > STOCK_TOLERANCE_MM for a, b in zip(stock, expected, strict=True)):
        has, needs = " × ".join(map(_mm, stock)), " × ".join(map(_mm, expected))
        raise Conflict(
            f"Printer {printer.name} holds {has} mm stock; this label needs {needs} mm.",
            code="printer_stock_mismatch",
            conditions=[{"code": "printer_stock_mismatch", "detail": f"stock {has} mm, label {needs} mm"}])
    return printer, wanted


def print_dispatch_create(*, job, printer: Printer, actor) -> PrintDispatch:
    """The dispatch of a job (in the request's transaction, beside the job row): status ``queued``."""
    dispatch = PrintDispatch.objects.create(job=job, printer=printer)
    audit_record(actor=actor, action=Action.CREATED, obj=dispatch,
                 changes={"printer": [None, printer.name], "status": [None, DispatchStatus.QUEUED]})
    return dispatch


# --- delivery (worker) ------------------------------------------------------------------------------------

_FORMAT = re.compile(rb"\^XA.*?\^XZ", re.S)


def zpl_formats(content: bytes) -> list[bytes]:
    """The ``^XA…^XZ`` formats of a ZPL document (field data is ^FH-escaped, so ^XZ only ends a format)."""
    return _FORMAT.findall(content)


def _timeouts() -> Timeouts:
    return Timeouts(
        connect=float(getattr(settings, "CMLIMS_PRINTER_CONNECT_TIMEOUT", 5)),
        send=float(getattr(settings, "CMLIMS_PRINTER_SEND_TIMEOUT", 10)),
        retries=int(getattr(settings, "CMLIMS_PRINTER_RETRIES", 2)),
        backoff=float(getattr(settings, "CMLIMS_PRINTER_RETRY_BACKOFF", 0.5)),
    )


def _outcome(dispatch: PrintDispatch, *, status: str, error: str = "", actor) -> None:
    previous = dispatch.status
    PrintDispatch.objects.filter(pk=dispatch.pk).update(
        status=status, error=error[:4000], sent_at=timezone.now() if status == DispatchStatus.SENT else None)
    audit_record(actor=actor, action=Action.PRINTED if status == DispatchStatus.SENT else Action.CHANGED,
                 obj=dispatch, changes={"status": [previous, status], "printer": [None, dispatch.printer.name],
                                        "labels_confirmed": [None, dispatch.labels_confirmed],
                                        **({"error": [None, error[:4000]]} if error else {})})


def print_dispatch_deliver(*, job, content: bytes, name: str, labels: int) -> int | None:
    """Send the job's output to its printer, if it has one; returns the labels confirmed (None: no printer).

    Raises ``PrinterError`` (with ``confirmed``: labels the printer took before it failed)."""
    dispatch = PrintDispatch.objects.select_related("printer").filter(job_id=job.pk).first()
    if dispatch is None:
        return None
    if dispatch.status == DispatchStatus.SENT:  # a re-run of a job already printed: never print twice
        return dispatch.labels_confirmed
    printer = dispatch.printer
    endpoint = address_parse(printer.kind, printer.address)
    PrintDispatch.objects.filter(pk=dispatch.pk).update(attempts=F("attempts") + 1)
    try:
        if printer.kind == PrinterKind.ZPL:
            formats = zpl_formats(content)

            def confirmed(count: int) -> None:
                dispatch.labels_confirmed = count
                PrintDispatch.objects.filter(pk=dispatch.pk).update(labels_confirmed=count)

            zpl_send(endpoint, formats, timeouts=_timeouts(), start=dispatch.labels_confirmed, on_confirmed=confirmed)
        else:
            ipp_print(endpoint, content, uri=printer.address, job_name=name, user=job.requested_by.get_username(),
                      timeouts=_timeouts())
            dispatch.labels_confirmed = labels  # the whole document or nothing
            PrintDispatch.objects.filter(pk=dispatch.pk).update(labels_confirmed=labels)
    except PrinterError as exc:
        error = f"{printer.name}: {exc.message}"
        with transaction.atomic():
            _outcome(dispatch, status=DispatchStatus.FAILED, error=error, actor=job.requested_by)
        raise PrinterError(error, code=exc.code, confirmed=dispatch.labels_confirmed,
                           problems=exc.extra.get("problems", [])) from exc
    with transaction.atomic():
        _outcome(dispatch, status=DispatchStatus.SENT, actor=job.requested_by)
    return dispatch.labels_confirmed
