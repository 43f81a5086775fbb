"""Temperature logger upload: parse (all or nothing), store with its readings, and apply rule 6.

An excursion — time outside the shipment's transport range longer than its allowed minutes (see
``batches.shipping.temperature`` for how the time is counted) — opens a temperature-excursion
investigation on the shipment and puts it in ``receipt_on_hold``; receipt then waits for a QC officer
to close that investigation.
"""

from __future__ import annotations

import hashlib

from django.db import transaction
from django.utils import timezone

from batches.shipping.lifecycle import LOGGING, shipment_require
from batches.shipping.locks import shipment_lock, temperature_logs_lock
from batches.shipping.models import Shipment, ShipmentStatus, TemperatureLog, TemperatureReading
from batches.shipping.services.common import require_coordinator
from batches.shipping.services.status import shipment_set_status
from batches.shipping.temperature import ExcursionSummary, excursion_compute, logger_csv_parse
from cmlims.audit import audited_bulk_create, audited_create, audited_void
from cmlims.exceptions import field_error
from cmlims.investigations.models import Investigation, Kind
from cmlims.investigations.models import Status as InvestigationStatus
from cmlims.investigations.services import investigation_open


def _excursion_details(shipment: Shipment, summary: ExcursionSummary, file_name: str) -> str:
    episodes = "\n".join(
        f"- {e.start:%Y-%m-%d %H:%M} to {e.end:%Y-%m-%d %H:%M} UTC ({e.duration.total_seconds() / 60:.0f} min)"
        for e in summary.episodes
    )
    return (
        f"Logger file {file_name}: {summary.minutes_outside} min outside {summary.low_c} to {summary.high_c} °C "
        f"(allowed {shipment.transport_excursion_allowed_minutes} min); min {summary.min_c} °C, "
        f"max {summary.max_c} °C over {summary.samples} samples.\nTime outside:\n{episodes}"
    )


def _open_excursion_investigation(shipment: Shipment) -> Investigation | None:
    """A replacement log with an excursion links the excursion investigation already open, not a second one."""
    ids = TemperatureLog.objects.filter(shipment=shipment, investigation__isnull=False).values("investigation_id")
    return Investigation.objects.filter(pk__in=ids, status=InvestigationStatus.OPEN).first()


def shipment_temperature_log_upload(
    *, shipment: Shipment, actor, file_name: str, data: bytes, reason: str = ""
) -> TemperatureLog:
    """Store a logger file for a delivered shipment. A bad file raises 400 with ``rows`` and stores nothing.

    A second file replaces the first only with a reason (the first is voided, kept for the record).
    """
    require_coordinator(actor, "Uploading temperature logger data")
    readings = logger_csv_parse(data)  # before any lock: a bad file never touches the database
    with transaction.atomic():
        locked = shipment_lock(shipment)
        shipment_require(locked, LOGGING)
        previous = temperature_logs_lock(locked)
        if previous and not (reason or "").strip():
            raise field_error("reason", "this shipment already has a logger file: give the reason to replace it")
        for old in previous:
            audited_void(old, actor=actor, reason=reason)
        summary = excursion_compute(
            readings, low_c=locked.transport_temperature_min_c, high_c=locked.transport_temperature_max_c,
            allowed_minutes=locked.transport_excursion_allowed_minutes,
        )
        investigation = None
        if summary.is_excursion:
            investigation = _open_excursion_investigation(locked) or investigation_open(
                subject=locked, kind=Kind.TEMPERATURE_EXCURSION, actor=actor,
                title=f"Temperature excursion: {summary.minutes_outside} min outside the range in {locked}",
                details=_excursion_details(locked, summary, file_name),
            )
        log = audited_create(
            TemperatureLog, actor=actor, reason=reason, shipment=locked, file_name=(file_name or "logger.csv")[:200],
            file_sha256=hashlib.sha256(data).hexdigest(), source_csv=data.decode("utf-8-sig"), uploaded_by=actor,
            uploaded_at=timezone.now(), sample_count=summary.samples, first_at=readings[0].at,
            last_at=readings[-1].at, min_c=summary.min_c, max_c=summary.max_c,
            range_min_c=locked.transport_temperature_min_c, range_max_c=locked.transport_temperature_max_c,
            allowed_minutes=locked.transport_excursion_allowed_minutes, minutes_outside=summary.minutes_outside,
            excursion=summary.is_excursion, investigation=investigation,
        )
        audited_bulk_create(
            TemperatureReading,
            [TemperatureReading(log=log, at=r.at, temperature_c=r.temperature_c) for r in readings],
            actor=actor, clean=False,  # values were validated by the parser; full_clean per row would double it
        )
        if summary.is_excursion and locked.status != ShipmentStatus.RECEIPT_ON_HOLD:
            shipment_set_status(shipment=locked, to=ShipmentStatus.RECEIPT_ON_HOLD, actor=actor,
                                reason=f"temperature excursion ({investigation})")
        return log
