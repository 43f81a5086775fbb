"""Temperature logger upload: parse (all or nothing), store with its readings, and apply rule 6.

An excursion — time outside the shipment's transport range longer than its allowed minutes (see
``batches.shipping.temperature`` for how the time is counted) — opens a temperature-excursion
investigation on the shipment and puts it in ``receipt_on_hold``; receipt then waits for a QC officer
to close that investigation.

Replacing a file (it voids the earlier one) needs a reason and a QC officer's electronic signature
("logger file replaced", on the new log). The QC officer signs with their own user name and password; they
are not the uploader. A replacement never clears an excursion: its investigation keeps governing receipt.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from batches.shipping.lifecycle import LOGGING, shipment_require
from batches.shipping.locks import shipment_lock, temperature_logs_lock
from batches.shipping.models import Shipment, ShipmentStatus, TemperatureLog, TemperatureReading
from batches.shipping.services.common import require_coordinator
from batches.shipping.services.status import shipment_set_status
from batches.shipping.signed import SIGNED_FIELDS
from batches.shipping.temperature import ExcursionSummary, excursion_compute, logger_csv_parse
from cmlims import roles
from cmlims.audit import audited_bulk_create, audited_create, audited_void
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_record, signing_credentials_verify
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


def _replacement_signer(*, actor, username: str, password: str, meaning: str | None, reason: str):
    """The QC officer who signs a replacement: named by ``username``, re-authenticated by password (11.200(a)),
    not the uploader. Runs before the upload's transaction (the failure count must survive the refusal)."""
    if not (reason or "").strip():
        raise field_error("reason", "this shipment already has a logger file: give the reason to replace it")
    if not username:
        raise field_error("qc_username", "replacing a logger file needs a QC officer's signature")
    signer = get_user_model().objects.filter(username=username, is_active=True).first()
    if signer is None:
        raise field_error("qc_username", "no active user with this user name")
    roles.require_role(signer, roles.QC_OFFICER, "Signing a logger file replacement")
    if signer.pk == actor.pk:
        raise field_error("qc_username", "the QC officer who signs the replacement must not be the uploader")
    grant = signing_credentials_verify(signer=signer, username=username, password=password,
                                       meaning=Meaning.LOGGER_FILE_REPLACED, meaning_sent=meaning, reason=reason)
    return signer, grant


def shipment_temperature_log_upload(
    *, shipment: Shipment, actor, file_name: str, data: bytes, reason: str = "", qc_username: str = "",
    qc_password: str = "", qc_meaning: str | None = None,
) -> TemperatureLog:
    """Store a logger file for a delivered shipment. A bad file raises 400 with ``rows`` and stores nothing.

    A second file replaces the first only with a reason and a QC officer's signature (``qc_username``,
    ``qc_password``, optional ``qc_meaning`` = "logger file replaced"); the first is voided, kept for the record.
    """
    require_coordinator(actor, "Uploading temperature logger data")
    readings = logger_csv_parse(data)  # before any lock: a bad file never touches the database
    signer = grant = None
    if TemperatureLog.objects.filter(shipment=shipment, voided_at__isnull=True).exists():
        signer, grant = _replacement_signer(actor=actor, username=qc_username, password=qc_password, meaning=qc_meaning,
                                     reason=reason)
    with transaction.atomic():
        locked = shipment_lock(shipment)
        shipment_require(locked, LOGGING)
        previous = temperature_logs_lock(locked)
        if previous and signer is None:  # a file arrived since the check above: sign for replacing it
            raise field_error("qc_username", "this shipment already has a logger file: replacing it needs a "
                                             "reason and a QC officer's signature")
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
        name = (file_name or "logger.csv")[:200]
        # The file as uploaded is kept as a stored file (verify_audit re-hashes it against file_sha256).
        stored_name = name.replace("\\", "/").rsplit("/", 1)[-1] or "logger.csv"
        log = audited_create(
            TemperatureLog, actor=actor, reason=reason, shipment=locked, file_name=name,
            original=ContentFile(data, name=stored_name),
            file_sha256=hashlib.sha256(data).hexdigest(), source_csv=data.decode("utf-8-sig"), uploaded_by=actor,
            uploaded_at=timezone.now(), sample_count=summary.samples, first_at=readings[0].at,
            last_at=readings[-1].at, min_c=summary.min_c, max_c=summary.max_c,
            range_min_c=locked.transport_temperature_min_c, range_max_c=locked.transport_temperature_max_c,
            allowed_minutes=locked.transport_excursion_allowed_minutes, minutes_outside=summary.minutes_outside,
            excursion=summary.is_excursion, investigation=investigation,
        )
        if previous:
            meaning = Meaning.LOGGER_FILE_REPLACED
            signature_record(grant=grant, subject=log, signer=signer, meaning=meaning, reason=reason,
                             content={"shipment": locked.reference, "file_sha256": log.file_sha256,
                                      "replaces_sha256": sorted(old.file_sha256 for old in previous),
                                      "reason": reason},
                             field_list_version=SIGNED_FIELDS[meaning])
        audited_bulk_create(
            TemperatureReading,
            [TemperatureReading(log=log, at=r.at, temperature_c=r.temperature_c) for r in readings],
            actor=actor, clean=False,  # values were validated by the parser; full_clean per row would double it
        )
        if summary.is_excursion and locked.status != ShipmentStatus.RECEIPT_ON_HOLD:
            shipment_set_status(shipment=locked, to=ShipmentStatus.RECEIPT_ON_HOLD, actor=actor,
                                reason=f"temperature excursion ({investigation})")
        return log
