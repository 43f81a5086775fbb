"""The benchmark dataset's shipments (issue 14: 20,000 at default scale), built after the lots by COPY.

Lots spread over the ten years (packaged at least ``MIN_AGE`` ago) are released — those whose shelf life has
ended since are then expired, as the periodic task does — and ship ``SHIPMENTS_PER_LOT`` shipments of
``VIALS_PER_SHIPMENT`` vials each to consignees, first-in-first-out. Each shipment goes the services' way,
written here in bulk: created, vials allocated (``ShipmentVial``; vial ``allocated``), packed (custody
"packed by"), shipped with the coordinator's "shipped" signature (custody "handed to courier"; vials
``shipped``), delivered, its logger file stored (a clean ``LOG_SAMPLES``-sample trace with its readings,
computed by the app's own parser and excursion rule), then received with a "received" signature (vials
``received``). The newest ``IN_TRANSIT`` share stays shipped. Every row gets the audit entry the service
would write ("created", "signed", "transitioned", "changed" with the status change), chained after the lots'.

Not cloned: the lots' release signatures, audit reviews and QC approvals (a release's content covers the
whole genealogy); the released clones carry the "transitioned" entry only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from decimal import Decimal

SHIPMENTS_PER_LOT = 8
VIALS_PER_SHIPMENT = 5
SHIPMENTS_PER_CONSIGNEE = 100
IN_TRANSIT = 0.01  # the newest shipments, not delivered yet
MIN_AGE = dt.timedelta(days=120)  # a shipped lot was packaged at least this long ago: every step is in the past
LOG_SAMPLES = 7  # 24 h logged every 4 hours
LOTS_PER_ROUND = 100
MARKER = "bench_dataset_shipments"


def marker_present() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        return MARKER in connection.introspection.table_names(cursor)


def _logger_csv(start: dt.datetime, low: Decimal, high: Decimal) -> bytes:
    """A trace that stays inside [low, high]: a gentle wave around the middle."""
    middle, half = (low + high) / 2, (high - low) / 2
    wave = (0, 1, 2, 1, 0, -1, -2)
    lines = ["timestamp,temperature_c"]
    for i in range(LOG_SAMPLES):
        lines.append(f"{(start + dt.timedelta(hours=4 * i)).isoformat()},{middle + half * wave[i % 7] / 4:.1f}")
    return ("\n".join(lines) + "\n").encode()


class _Templates:
    """What the clones copy from the demo's first shipment (delivered, clean logger file)."""

    def __init__(self) -> None:
        from django.contrib.contenttypes.models import ContentType

        from batches.shipping.models import Consignee, Shipment
        from cmlims.esign.models import Signature

        self.shipment = Shipment.objects.select_related("product", "created_by").order_by("pk").first()
        if self.shipment is None:
            raise SystemExit("the demo seed made no shipment to copy")
        consignee = Consignee.objects.get(pk=self.shipment.consignee_id)
        self.consignee = {f.attname: getattr(consignee, f.attname) for f in Consignee._meta.concrete_fields}
        self.product = self.shipment.product
        self.coordinator = self.shipment.created_by
        self.content_type_id = ContentType.objects.get_for_model(Shipment).pk
        shipped = Signature.objects.filter(content_type_id=self.content_type_id, meaning="shipped").first()
        self.printed_name = shipped.printed_name
        self.ship_reason = shipped.reason


def add_shipments(scale, writer, chain) -> int:
    """Write ``scale.shipments`` shipments (see the module docstring); returns how many were written."""
    from django.utils import timezone

    from batches.models import CMLot, PackagingRun, Vial
    from batches.shipping.models import Consignee
    from benchmarks.dataset import log

    if not scale.shipments:
        return 0
    t = _Templates()
    now = timezone.now()
    lots_needed = -(-scale.shipments // SHIPMENTS_PER_LOT)
    candidates = list(
        PackagingRun.objects.filter(lot__lot_number__startswith="BM", lot__status="packaged",
                                    ended_at__lt=now - MIN_AGE)
        .order_by("lot_id").values_list("lot_id", "ended_at"))
    if len(candidates) < lots_needed:
        raise SystemExit(f"{scale.shipments:,} shipments need {lots_needed:,} packaged lots older than "
                         f"{MIN_AGE.days} days; the dataset has {len(candidates):,}")
    step = len(candidates) / lots_needed
    chosen = [candidates[int(i * step)] for i in range(lots_needed)]
    consignees = _consignees(scale, writer, chain, t)
    consignee_objects = [Consignee(**row) for row in consignees]
    shipment_ids = iter(writer.ids(_model("Shipment"), scale.shipments))
    in_transit_from = int(scale.shipments * (1 - IN_TRANSIT))
    number = 0
    for first in range(0, len(chosen), LOTS_PER_ROUND):
        batch = chosen[first:first + LOTS_PER_ROUND]
        lots = {row["id"]: row for row in CMLot.objects.filter(pk__in=[lot_id for lot_id, _ in batch])
                .values("id", "lot_number", "status_changed_at", "expiry")}
        vials = defaultdict(list)
        for lot_id, vial_id, serial in (Vial.objects.filter(lot_id__in=lots).order_by("lot_id", "sequence")
                                        .values_list("lot_id", "id", "serial")):
            vials[lot_id].append((vial_id, serial))
        round_ = _Round(writer, chain, t)
        for lot_id, packaged_at in batch:
            released_at = round_.release(lots[lot_id], packaged_at + dt.timedelta(days=14), now)
            for k in range(SHIPMENTS_PER_LOT):
                if number == scale.shipments:
                    break
                picked = vials[lot_id][k * VIALS_PER_SHIPMENT:(k + 1) * VIALS_PER_SHIPMENT]
                consignee = consignee_objects[(number * 7919) % len(consignee_objects)]
                created_at = released_at + dt.timedelta(days=3 * (k + 1), hours=number % 8)
                round_.shipment(next(shipment_ids), number, consignee, picked, created_at,
                                delivered=number < in_transit_from)
                number += 1
        round_.write()
        chain.flush()
        if (first // LOTS_PER_ROUND) % 5 == 4 or first + LOTS_PER_ROUND >= len(chosen):
            log(f"{number:,}/{scale.shipments:,} shipments (audit head #{chain.sequence:,})")
    return number


def _model(name: str):
    from django.apps import apps

    return apps.get_model("shipping", name)


def _consignees(scale, writer, chain, t: _Templates) -> list[dict]:
    from batches.shipping.models import Consignee

    count = max(2, scale.shipments // SHIPMENTS_PER_CONSIGNEE)
    rows = []
    for number, consignee_id in enumerate(writer.ids(Consignee, count), start=1):
        rows.append({**t.consignee, "id": consignee_id, "name": f"Bench clinic {number:05d}",
                     "address_line1": f"Klinikweg {number}", "licence_number": f"BX-{number:05d}",
                     "contact_email": f"pharmacy{number}@clinic.example"})
    writer.write(Consignee, rows)
    chain.created(Consignee, rows, "name", actor=t.coordinator)
    chain.flush()
    return rows


class _Round:
    """The rows of one round of lots' shipments and their audit entries, in the order the services write them."""

    def __init__(self, writer, chain, t: _Templates) -> None:
        self.writer, self.chain, self.t = writer, chain, t
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.vial_status: dict[int, str] = {}
        self.lot_status: list[tuple[str, dt.datetime, int]] = []

    def release(self, lot: dict, released_at: dt.datetime, now: dt.datetime) -> dt.datetime:
        """Packaged → released (then expired if its shelf life has ended), as "transitioned" entries."""
        from cmlims.audit import to_jsonable

        steps = [("packaged", "released", released_at)]
        if lot["expiry"] and lot["expiry"] < now.date():
            expired_at = dt.datetime.combine(lot["expiry"] + dt.timedelta(days=1), dt.time(2), tzinfo=dt.UTC)
            steps.append(("released", "expired", expired_at))
        before = lot["status_changed_at"]
        for old, new, at in steps:
            changes = {"status": [old, new], "status_changed_at": [to_jsonable(before), to_jsonable(at)]}
            self.chain.entry("batches.cmlot", lot["id"], lot["lot_number"], action="transitioned", changes=changes)
            before = at
        self.lot_status.append((steps[-1][1], before, lot["id"]))
        return released_at

    def _vials(self, vials: list[tuple[int, str]], old: str, new: str) -> None:
        for vial_id, serial in vials:
            self.chain.entry("batches.vial", vial_id, serial, action="changed", changes={"status": [old, new]},
                             actor=self.t.coordinator)
            self.vial_status[vial_id] = new

    def _created(self, name: str, row: dict, repr_value: object) -> None:
        self.rows[name].append(row)
        self.chain.entry(f"shipping.{name.lower()}", row["id"], repr_value, actor=self.t.coordinator)

    def _transition(self, shipment: dict, old: str, new: str, **changes) -> None:
        from cmlims.audit import to_jsonable

        body = {"status": [old, new], **{k: [to_jsonable(shipment[k]), to_jsonable(v)] for k, v in changes.items()}}
        self.chain.entry("shipping.shipment", shipment["id"], shipment["reference"], action="transitioned",
                         changes=body, actor=self.t.coordinator)
        shipment.update(status=new, **changes)

    def _custody(self, shipment: dict, kind: str, at: dt.datetime, party: str = "", notes: str = "",
                 signature_id: int | None = None) -> None:
        (custody_id,) = self.writer.ids(_model("CustodyEvent"), 1)
        self._created("CustodyEvent", {"id": custody_id, "shipment_id": shipment["id"], "kind": kind,
                                       "occurred_at": at, "recorded_by_id": self.t.coordinator.pk,
                                       "recorded_at": at, "party": party, "notes": notes,
                                       "signature_id": signature_id}, kind)

    def _signature(self, shipment: dict, consignee, meaning: str, at: dt.datetime, serials: list[str],
                   reason: str) -> int:
        from batches.shipping.models import Shipment
        from batches.shipping.signed import SIGNED_FIELDS, signed_content
        from cmlims.audit import to_jsonable
        from cmlims.esign.models import Signature
        from cmlims.esign.services import signature_digest

        instance = Shipment(**shipment)
        instance.consignee, instance.product = consignee, self.t.product
        content = to_jsonable(signed_content(instance, meaning=meaning, serials=serials))
        version = SIGNED_FIELDS[meaning]
        (signature_id,) = self.writer.ids(Signature, 1)
        row = {"id": signature_id, "content_type_id": self.t.content_type_id, "object_id": str(shipment["id"]),
               "signer_id": self.t.coordinator.pk, "printed_name": self.t.printed_name, "meaning": meaning,
               "reason": reason, "signed_at": at, "field_list_version": version, "signed_fields": sorted(content),
               "content": content, "chain_sequence": self.chain.sequence, "chain_hash": self.chain.prev,
               "content_sha256": signature_digest(content=content, field_list_version=version,
                                                  chain_sequence=self.chain.sequence, chain_hash=self.chain.prev)}
        self.rows["Signature"].append(row)
        self.chain.entry("esign.signature", signature_id, f"{self.t.printed_name} — {meaning}", action="signed",
                         actor=self.t.coordinator)
        return signature_id

    def shipment(self, shipment_id: int, number: int, consignee, vials: list[tuple[int, str]],
                 created_at: dt.datetime, *, delivered: bool) -> None:
        from batches.shipping.gs1 import sscc_build

        t, coordinator = self.t, self.t.coordinator
        row = {f.attname: getattr(t.shipment, f.attname) for f in _model("Shipment")._meta.concrete_fields}
        row.update(id=shipment_id, reference=f"SHP-{shipment_id:06d}", sscc=sscc_build(shipment_id),
                   consignee_id=consignee.pk, status="draft", tracking_number=f"BX{number + 1:09d}",
                   logger_serial=f"BT-{number + 1:07d}", notes="", created_at=created_at,
                   packed_at=None, shipped_at=None, delivered_at=None, received_at=None, received_by_name="",
                   cancelled_at=None, cancelled_by_id=None, cancel_reason="")
        self._created("Shipment", row, row["reference"])
        allocated_at = created_at + dt.timedelta(minutes=10)
        for (vial_id, _serial), allocation_id in zip(vials, self.writer.ids(_model("ShipmentVial"), len(vials)),
                                                    strict=True):
            self._created("ShipmentVial", {"id": allocation_id, "shipment_id": shipment_id, "vial_id": vial_id,
                                           "allocated_at": allocated_at, "allocated_by_id": coordinator.pk,
                                           "scanned_as": "", "released_at": None, "released_by_id": None,
                                           "release_reason": ""}, f"{vial_id} in {shipment_id}")
        self._vials(vials, "available", "allocated")
        packed_at = created_at + dt.timedelta(hours=2)
        self._transition(row, "draft", "packed", packed_at=packed_at)
        self._custody(row, "packed", packed_at, notes=f"{len(vials)} vial(s)")
        shipped_at = created_at + dt.timedelta(hours=4)
        serials = [serial for _, serial in vials]
        self._transition(row, "packed", "shipped", shipped_at=shipped_at)
        signature_id = self._signature(row, consignee, "shipped", shipped_at, serials, t.ship_reason)
        self._custody(row, "handed_to_courier", shipped_at, party="driver J. Nowak",
                      notes=f"tracking {row['tracking_number']}", signature_id=signature_id)
        self._vials(vials, "allocated", "shipped")
        if not delivered:
            return
        delivered_at = shipped_at + dt.timedelta(hours=24)
        self._transition(row, "shipped", "delivered", delivered_at=delivered_at)
        self._custody(row, "delivered", delivered_at, party="hospital pharmacy")
        self._log(row, shipped_at, delivered_at + dt.timedelta(hours=1))
        received_at = delivered_at + dt.timedelta(hours=2)
        self._transition(row, "delivered", "received", received_at=received_at, received_by_name="pharmacy goods-in")
        signature_id = self._signature(row, consignee, "received", received_at, serials, "receipt confirmed")
        self._custody(row, "received", received_at, party="pharmacy goods-in", signature_id=signature_id)
        self._vials(vials, "shipped", "received")

    def _log(self, shipment: dict, start: dt.datetime, uploaded_at: dt.datetime) -> None:
        from batches.shipping.temperature import excursion_compute, logger_csv_parse

        low, high = shipment["transport_temperature_min_c"], shipment["transport_temperature_max_c"]
        data = _logger_csv(start, low, high)
        readings = logger_csv_parse(data)
        summary = excursion_compute(readings, low_c=low, high_c=high,
                                    allowed_minutes=shipment["transport_excursion_allowed_minutes"])
        (log_id,) = self.writer.ids(_model("TemperatureLog"), 1)
        name = f"{shipment['logger_serial']}.csv"
        self._created("TemperatureLog", {
            "id": log_id, "shipment_id": shipment["id"], "file_name": name,
            "file_sha256": hashlib.sha256(data).hexdigest(), "source_csv": data.decode(), "original": "",
            "uploaded_by_id": self.t.coordinator.pk, "uploaded_at": uploaded_at, "sample_count": summary.samples,
            "first_at": readings[0].at, "last_at": readings[-1].at, "min_c": summary.min_c, "max_c": summary.max_c,
            "range_min_c": low, "range_max_c": high,
            "allowed_minutes": shipment["transport_excursion_allowed_minutes"],
            "minutes_outside": summary.minutes_outside, "excursion": summary.is_excursion, "investigation_id": None,
            "voided_at": None, "voided_by_id": None, "void_reason": "",
        }, f"{name} ({summary.samples} samples, {summary.minutes_outside} min outside)")
        for reading, reading_id in zip(readings, self.writer.ids(_model("TemperatureReading"), len(readings)),
                                       strict=True):
            self._created("TemperatureReading", {"id": reading_id, "log_id": log_id, "at": reading.at,
                                                 "temperature_c": reading.temperature_c}, reading.at.isoformat())

    def write(self) -> None:
        """The round's rows by COPY, then the vials' and lots' new statuses."""
        from cmlims.esign.models import Signature

        for name in ("Shipment", "ShipmentVial", "CustodyEvent", "TemperatureLog", "TemperatureReading"):
            self.writer.write(_model(name), self.rows[name])
        self.writer.write(Signature, self.rows["Signature"])
        by_status = defaultdict(list)
        for vial_id, status in self.vial_status.items():
            by_status[status].append(vial_id)
        with self.writer.connection.cursor() as cursor:
            for status, ids in by_status.items():
                marks = ", ".join(["%s"] * len(ids))
                cursor.execute(f"UPDATE batches_vial SET status = %s WHERE id IN ({marks})",  # noqa: S608
                               [status, *ids])
            cursor.executemany("UPDATE batches_cmlot SET status = %s, status_changed_at = %s WHERE id = %s",
                               self.lot_status)
