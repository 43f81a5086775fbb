"""The benchmark dataset: ten years of a busy site, built once on the configured database and reused.

``python -m benchmarks.dataset [small|medium|default]`` (``make bench`` builds it first). Bulk paths only:
the demo seed gives one complete, valid lot family (donor → banks → cultures → harvests → contributions →
lot → freeze-drying run → packaging run → vials, QC results); that family is cloned with new keys, codes and
times by PostgreSQL COPY (psycopg 3 ``cursor.copy``; SQLite falls back to ``executemany``), and every
cloned row gets its "created" audit entry, HMAC-chained after the demo's own entries, so ``verify_audit``
passes over the whole trail. Lots per donor follow a Zipf spread (donor k gets a share ∝ 1/k).

Clones keep the template lot's status (packaged, quarantine) and carry unapproved QC results: a consistent
state that needs no signatures. Released lots, signatures and shipments come from the demo seed only.
A finished build is recorded in the table ``bench_dataset``: a second run at the same scale reuses it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import sys
import time
from dataclasses import dataclass

from benchmarks._support import setup_django


@dataclass(frozen=True)
class Scale:
    name: str
    donors: int
    lots: int
    vials_per_lot: int
    qc_per_lot: int
    shipments: int = 0  # lots // 5 for every scale (20,000 at default)


SCALES = {
    "tiny": Scale("tiny", donors=5, lots=40, vials_per_lot=50, qc_per_lot=15, shipments=16),  # the dataset test
    "small": Scale("small", donors=50, lots=2_000, vials_per_lot=50, qc_per_lot=15, shipments=400),
    "medium": Scale("medium", donors=300, lots=20_000, vials_per_lot=50, qc_per_lot=15, shipments=4_000),
    # 1,000 donors, 100,000 lots, 5,000,000 vials, 1,500,000 QC results, 20,000 shipments (issue 14).
    "default": Scale("default", donors=1_000, lots=100_000, vials_per_lot=50, qc_per_lot=15, shipments=20_000),
    # Growth (B1, B2, B8 at ×1, ×4, ×16 of a small base): donors grow with the lots.
    **{f"g{k}": Scale(f"g{k}", donors=20 * k, lots=250 * k, vials_per_lot=50, qc_per_lot=15, shipments=50 * k)
       for k in (1, 4, 16)},
}
CHUNK = 500  # lots per COPY round
YEARS = 10
TEMPLATE_STATUS = "packaged"
MARKER = "bench_dataset"


def log(message: str) -> None:
    print(f"[dataset {time.strftime('%H:%M:%S')}] {message}", flush=True)


def zipf_counts(total: int, donors: int) -> list[int]:
    """Lots per donor, donor k ∝ 1/k, summing to ``total`` (the remainder goes to the first donor)."""
    weights = [1 / k for k in range(1, donors + 1)]
    scale = total / sum(weights)
    counts = [max(1, int(w * scale)) for w in weights]
    counts[0] += total - sum(counts)
    return counts


def built_scale() -> str | None:
    from django.db import connection

    with connection.cursor() as cursor:
        if MARKER not in connection.introspection.table_names(cursor):
            return None
        cursor.execute(f"SELECT scale FROM {MARKER}")  # noqa: S608 (fixed name)
        row = cursor.fetchone()
    return row[0] if row else None


class _Writer:
    """Rows into tables by COPY (PostgreSQL) or executemany (SQLite), ids handed out here."""

    def __init__(self) -> None:
        from django.db import connection

        self.connection = connection
        self.next_id: dict[str, int] = {}

    def ids(self, model, count: int) -> range:
        table = model._meta.db_table
        if table not in self.next_id:
            with self.connection.cursor() as cursor:
                cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
                self.next_id[table] = cursor.fetchone()[0] + 1
        start = self.next_id[table]
        self.next_id[table] = start + count
        return range(start, start + count)

    def write(self, model, rows: list[dict]) -> None:
        if not rows:
            return
        fields = model._meta.concrete_fields
        table = self.connection.ops.quote_name(model._meta.db_table)
        columns = [f.column for f in fields]
        names = [f.attname for f in fields]
        # A column the clone does not set (one added to the model since) takes the field's default.
        defaults = {f.attname: f.get_default() for f in fields if f.attname not in rows[0]}
        if defaults:
            rows = [{**defaults, **row} for row in rows]
        # Only JSON columns need converting (the rest go as they are): per column, not per value (profiled).
        json_at = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                quoted = ", ".join(self.connection.ops.quote_name(c) for c in columns)
                with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(_values_of(row, names, json_at))
            else:
                marks = ", ".join(["%s"] * len(columns))
                quoted = ", ".join(self.connection.ops.quote_name(c) for c in columns)
                cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})",  # noqa: S608
                                   [_values_of(row, names, json_at) for row in rows])

    def reset_sequences(self, models: list) -> None:
        from django.core.management.color import no_style

        with self.connection.cursor() as cursor:
            for sql in self.connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)


def _values_of(row: dict, names: list[str], json_at: list[int]) -> list:
    values = [row[n] for n in names]
    for i in json_at:
        value = values[i]
        values[i] = "{}" if value == {} else json.dumps(value)
    return values


class _Chain:
    """The "created" entries of the cloned rows, chained after the current head and written by COPY."""

    def __init__(self, writer: _Writer, actor) -> None:
        from django.utils import timezone

        from cmlims.audit import chain_head
        from cmlims.audit.hashing import canonical_values, hmac_key, to_jsonable

        head = chain_head()
        self.sequence, self.prev = head.sequence, head.hash
        self.key, self.canonical = hmac_key(), canonical_values
        self.writer, self.actor = writer, actor
        self.now = timezone.now()
        self.at_json = to_jsonable(self.now)
        self.pending: list[dict] = []

    def created(self, model, rows: list[dict], repr_field: str | None, *, action: str = "created",
                actor=None) -> None:
        label = model._meta.label_lower
        for row in rows:
            self.entry(label, row["id"], row[repr_field] if repr_field else row["id"], action=action, actor=actor)

    def entry(self, label: str, object_id: int, object_repr: object, *, action: str = "created",
              changes: dict | None = None, actor=None) -> None:
        """One entry of ``actor`` (default: the build's) on ``label``:``object_id``, chained after the last."""
        actor = actor or self.actor
        self.sequence += 1
        values = {
            "sequence": self.sequence, "at": self.at_json, "user_id": actor.pk,
            "username": actor.username, "action": action, "object_type": label,
            "object_id": str(object_id), "object_repr": str(object_repr)[:200],
            "changes": changes or {}, "reason": "benchmark dataset", "request_id": "",
        }
        digest = hmac.new(self.key, (self.prev + self.canonical(values)).encode(), hashlib.sha256).hexdigest()
        values.update(at=self.now, prev_hash=self.prev, hash=digest)
        self.prev = digest
        self.pending.append(values)

    def flush(self) -> None:
        from cmlims.models import AuditEntry

        ids = self.writer.ids(AuditEntry, len(self.pending))
        for entry_id, values in zip(ids, self.pending, strict=True):
            values["id"] = entry_id
        self.writer.write(AuditEntry, self.pending)
        self.pending = []


def _values(model, **lookup) -> list[dict]:
    names = [f.attname for f in model._meta.concrete_fields]
    return list(model.objects.filter(**lookup).order_by("pk").values(*names))


def _shift(row: dict, delta: dt.timedelta) -> dict:
    """Move every time of a template row by ``delta`` (a clone happened that much earlier)."""
    out = dict(row)
    datetimes, dates = _time_keys(row)
    for key in datetimes:
        out[key] = row[key] + delta
    if dates:
        days = dt.timedelta(days=delta.days)
        for key in dates:
            out[key] = row[key] + days
    return out


_TIME_KEYS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _time_keys(row: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(datetime keys, date keys) of a template row, worked out once per row (the clones shift them)."""
    keys = _TIME_KEYS.get(id(row))
    if keys is None:
        keys = (tuple(k for k, v in row.items() if isinstance(v, dt.datetime)),
                tuple(k for k, v in row.items() if isinstance(v, dt.date) and not isinstance(v, dt.datetime)))
        _TIME_KEYS[id(row)] = keys
    return keys


def build(scale: Scale) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from batches.models import (
        CellBank,
        CellSource,
        CMLot,
        Culture,
        Harvest,
        HarvestContribution,
        LyophilisationPhase,
        LyophilisationRun,
        PackagingRun,
        Vial,
    )
    from cmlims.models import AuditEntry
    from config.demo import seed_all
    from qc.models import QCResult

    if CMLot.objects.exists():
        raise SystemExit("the configured database already holds lots but no benchmark dataset of this scale: "
                         "point DATABASE_URL at an empty database (it is migrated and seeded here)")
    started = time.perf_counter()
    _TIME_KEYS.clear()  # keyed by the template rows' ids: only this build's rows, alive until it ends
    seed_all(log=lambda _msg: None)
    log("demo seed loaded")
    template = CMLot.objects.get(status=TEMPLATE_STATUS)
    t_lot = _values(CMLot, pk=template.pk)[0]
    t_contribs = _values(HarvestContribution, lot=template)
    t_harvests = _values(Harvest, pk__in=[c["harvest_id"] for c in t_contribs])
    t_cultures = _values(Culture, pk__in={h["culture_id"] for h in t_harvests})
    t_sources = {b["source_id"] for b in _values(CellBank, pk__in={c["bank_id"] for c in t_cultures})}
    t_banks = _values(CellBank, source_id__in=t_sources)
    t_source = _values(CellSource, pk=min(t_sources))[0]
    t_lyo = _values(LyophilisationRun, lot=template)
    t_phases = _values(LyophilisationPhase, run__lot=template)
    t_packaging = _values(PackagingRun, lot=template)
    t_vial = _values(Vial, lot=template)[0]
    t_results = _values(QCResult, lot=template, status="valid")
    actor = get_user_model().objects.get(username="lab1")
    writer = _Writer()
    counts = zipf_counts(scale.lots, scale.donors)
    span = dt.timedelta(days=365 * YEARS)
    newest = t_lot["pooled_at"] - dt.timedelta(days=1)
    lot_no = 0
    with transaction.atomic():
        chain = _Chain(writer, actor)
        # Donors and their banks (codes BD-000001…), with the template's eligibility status and consent.
        donor_of_lot: list[tuple[int, dict]] = []
        source_ids = writer.ids(CellSource, scale.donors)
        sources, banks = [], []
        for number, (source_id, lots) in enumerate(zip(source_ids, counts, strict=True), start=1):
            # A determination's signature belongs to one donor (one-to-one): clones keep the template's status
            # and consent but carry no signature of their own.
            sources.append({**t_source, "id": source_id, "code": f"BD-{number:06d}", "eligibility_signature_id": None})
            bank_ids = dict(zip([b["id"] for b in t_banks], writer.ids(CellBank, len(t_banks)), strict=True))
            for b in t_banks:
                banks.append({**b, "id": bank_ids[b["id"]], "source_id": source_id,
                              "code": f"{b['code']}-D{number:06d}"[:40],
                              "parent_bank_id": bank_ids.get(b["parent_bank_id"])})
            donor_of_lot += [(number, bank_ids)] * lots
        writer.write(CellSource, sources)
        writer.write(CellBank, banks)
        chain.created(CellSource, sources, "code")
        chain.created(CellBank, banks, "code")
        chain.flush()
        log(f"{scale.donors:,} donors, {len(banks):,} cell banks")
        for first in range(0, scale.lots, CHUNK):
            batch = range(first, min(first + CHUNK, scale.lots))
            out: dict[type, list[dict]] = {m: [] for m in (Culture, Harvest, CMLot, HarvestContribution,
                                                           LyophilisationRun, LyophilisationPhase, PackagingRun,
                                                           Vial, QCResult)}
            for index in batch:
                lot_no += 1
                donor, bank_ids = donor_of_lot[index]
                # Oldest first, so that ids grow with time as on a real site.
                delta = (newest - span + span * index / scale.lots) - t_lot["pooled_at"]
                culture_ids = dict(zip([c["id"] for c in t_cultures], writer.ids(Culture, len(t_cultures)),
                                       strict=True))
                for c in t_cultures:
                    out[Culture].append({**_shift(c, delta), "id": culture_ids[c["id"]],
                                         "bank_id": bank_ids[c["bank_id"]], "code": f"BC{lot_no:07d}-{c['id']}"})
                harvest_ids = dict(zip([h["id"] for h in t_harvests], writer.ids(Harvest, len(t_harvests)),
                                       strict=True))
                for h in t_harvests:
                    out[Harvest].append({**_shift(h, delta), "id": harvest_ids[h["id"]],
                                         "culture_id": culture_ids[h["culture_id"]]})
                (lot_id,) = writer.ids(CMLot, 1)
                lot_number = f"BM{lot_no:07d}"
                out[CMLot].append({**_shift(t_lot, delta), "id": lot_id, "lot_number": lot_number})
                for c, contribution_id in zip(t_contribs, writer.ids(HarvestContribution, len(t_contribs)),
                                              strict=True):
                    out[HarvestContribution].append({**_shift(c, delta), "id": contribution_id, "lot_id": lot_id,
                                                     "harvest_id": harvest_ids[c["harvest_id"]]})
                lyo_ids = dict(zip([r["id"] for r in t_lyo], writer.ids(LyophilisationRun, len(t_lyo)),
                                   strict=True))
                for r in t_lyo:
                    out[LyophilisationRun].append({**_shift(r, delta), "id": lyo_ids[r["id"]], "lot_id": lot_id,
                                                   "run_number": f"BL{lot_no:07d}"})
                for p, phase_id in zip(t_phases, writer.ids(LyophilisationPhase, len(t_phases)), strict=True):
                    out[LyophilisationPhase].append({**_shift(p, delta), "id": phase_id,
                                                     "run_id": lyo_ids[p["run_id"]]})
                (packaging_id,) = writer.ids(PackagingRun, len(t_packaging))
                for r in t_packaging:
                    out[PackagingRun].append({**_shift(r, delta), "id": packaging_id, "lot_id": lot_id,
                                              "lyophilisation_run_id": lyo_ids[r["lyophilisation_run_id"]],
                                              "run_number": f"BP{lot_no:07d}", "vials_packaged": scale.vials_per_lot,
                                              "vials_rejected": 0})
                for sequence, vial_id in enumerate(writer.ids(Vial, scale.vials_per_lot), start=1):
                    out[Vial].append({**t_vial, "id": vial_id, "lot_id": lot_id, "packaging_run_id": packaging_id,
                                      "sequence": sequence, "serial": f"{lot_number}{sequence:05d}"})
                for n, result_id in enumerate(writer.ids(QCResult, scale.qc_per_lot)):
                    r = t_results[n % len(t_results)]
                    out[QCResult].append({**_shift(r, delta), "id": result_id, "lot_id": lot_id,
                                          "supersedes_id": None, "retest_of_id": None, "approval_id": None,
                                          "approved_by_id": None, "approved_at": None})
            for model, rows in out.items():
                writer.write(model, rows)
                repr_field = {CMLot: "lot_number", Vial: "serial", Culture: "code", PackagingRun: "run_number",
                              LyophilisationRun: "run_number"}.get(model)
                chain.created(model, rows, repr_field)
            chain.flush()
            done = batch.stop
            if done % (CHUNK * 10) == 0 or done == scale.lots:
                rate = done / (time.perf_counter() - started)
                log(f"{done:,}/{scale.lots:,} lots ({done * scale.vials_per_lot:,} vials; audit head "
                    f"#{chain.sequence:,}; {rate:,.0f} lots/s)")
        writer.reset_sequences([CellSource, CellBank, Culture, Harvest, CMLot, HarvestContribution,
                                LyophilisationRun, LyophilisationPhase, PackagingRun, Vial, QCResult, AuditEntry])
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE {MARKER} (scale varchar(20) NOT NULL, built_at varchar(40) NOT NULL)")
            cursor.execute(f"INSERT INTO {MARKER} VALUES (%s, %s)",  # noqa: S608
                           [scale.name, timezone.now().isoformat()])
        _shipments(scale, writer, chain, started)
    tables_analyze()
    log(f"built {scale.name} in {time.perf_counter() - started:.0f}s")


def tables_analyze(models: list | None = None) -> None:
    """What autovacuum does after a load this size, for every table or those of ``models``: statistics, and
    (outside a transaction) the visibility map too, so a count or a lookup by index reads the index only, as on
    a site whose rows are years old; a freshly loaded table has none, and the admin's count of 97,501
    packaged lots read 28,000 heap rows (32 ms against 11 ms once vacuumed)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        if models is None:
            cursor.execute(command)
        for model in models or ():
            cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")


def _shipments(scale: Scale, writer: _Writer, chain: _Chain, started: float) -> None:
    """The shipments stage (``benchmarks.dataset_shipping``) in the caller's transaction, then its marker."""
    from django.apps import apps
    from django.db import connection

    from benchmarks import dataset_shipping
    from cmlims.esign.models import Signature
    from cmlims.models import AuditEntry

    written = dataset_shipping.add_shipments(scale, writer, chain)
    writer.reset_sequences([*apps.get_app_config("shipping").get_models(), Signature, AuditEntry])
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {dataset_shipping.MARKER} (shipments integer NOT NULL)")
        cursor.execute(f"INSERT INTO {dataset_shipping.MARKER} VALUES (%s)", [written])  # noqa: S608
    log(f"{written:,} shipments (audit head #{chain.sequence:,}; {time.perf_counter() - started:.0f}s)")


def add_shipments_to_built(scale: Scale) -> None:
    """A dataset built before it had shipments gets them now, chained after its trail."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from batches.models import CMLot, Vial
    from cmlims.esign.models import Signature
    from cmlims.models import AuditEntry

    started = time.perf_counter()
    with transaction.atomic():
        writer = _Writer()
        _shipments(scale, writer, _Chain(writer, get_user_model().objects.get(username="lab1")), started)
    tables_analyze([*apps.get_app_config("shipping").get_models(), Signature, AuditEntry, CMLot, Vial])


def ensure(name: str) -> Scale:
    """The dataset at scale ``name`` on the configured database: reused if built, else migrated and built."""
    setup_django()
    from django.core.management import call_command

    scale = SCALES[name]
    found = built_scale()
    if found == name:
        from benchmarks import dataset_shipping

        if not dataset_shipping.marker_present():
            log(f"the {name} dataset has no shipments yet: adding {scale.shipments:,}")
            add_shipments_to_built(scale)
        log(f"reusing the {name} dataset")
        return scale
    if found:
        raise SystemExit(f"the configured database holds the {found} dataset; drop it or use another "
                         f"DATABASE_URL for {name}")
    call_command("migrate", verbosity=0)
    build(scale)
    return scale


if __name__ == "__main__":
    ensure(sys.argv[1] if len(sys.argv) > 1 else "default")
