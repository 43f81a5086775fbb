"""B6 (issue 14): CSV import of 10,000 QC results through the real import service, against a floor.

Measured: ``qc.services.imports.results_import`` — the service the API and the admin call — on a 10,000-row
export over up to 20 packaged lots with a specification in force at pooling (the small dataset's clones predate
the specification, so there it is the demo's one lot): parsing, the lots locked, every check (columns, sizes,
lot open, test of the lot's specification, analyst's role, tested_at, units and pass/fail), the original file
kept (``ResultImport``), one audit entry per result (late rows with their own time and reason), an OOS
investigation per failing result (5 %). Floor: ``bulk_create`` of the same result rows, investigations and import
record, and their audit entries HMAC-chained as ``cmlims.audit`` chains them (``bulk_create`` too). Reported
beside it (the note): PostgreSQL COPY of the same result rows and entries.

Nothing is kept: every run (both sides) is a transaction rolled back, and the originals go to a temporary
MEDIA_ROOT removed at exit, so the dataset other benchmarks read is unchanged.
"""

from __future__ import annotations

import atexit
import csv
import hashlib
import hmac
import io
import shutil
import tempfile
import time
from datetime import timedelta

from benchmarks.harness import Case

ROWS = 10_000
LOTS = 20
FAILING_EVERY = 20  # 5 % out of specification: one OOS investigation each
LATE_EVERY = 10  # 10 % tested more than CMLIMS_LATE_ENTRY_HOURS ago, each at its own time, with a reason


class _Rollback(Exception):
    """Raised inside the transaction of a run to roll it back."""


def _rolled_back(fn) -> object:
    from django.db import transaction

    box: list[object] = []
    try:
        with transaction.atomic():
            box.append(fn())
            raise _Rollback
    except _Rollback:
        pass
    return box[0]


def _value(item, failing: bool) -> str:
    from qc.models import LimitKind

    kind = item.limit_kind
    if kind == LimitKind.QUALITATIVE:
        refused = [v for v in item.allowed_values if v not in item.passing_values]
        return (refused[0] if failing and refused else item.passing_values[0])
    lower, upper = item.lower, item.upper
    if kind == LimitKind.RANGE:
        return str(upper + 1 if failing else (lower + upper) / 2)
    if kind == LimitKind.MAX:
        return str(upper * 2 + 1 if failing else upper / 2)
    return str(lower / 2 - 1 if failing else lower * 2 + 1)


def export_csv() -> bytes:
    """10,000 rows over 20 packaged lots: every test of each lot's specification in turn."""
    from django.utils import timezone

    from batches.models import CMLot
    from qc.selectors import lot_spec_items_by_test

    # Clones are dated over ten years: the newest packaged lots with a specification in force at pooling.
    candidates = list(CMLot.objects.filter(status="packaged", voided_at__isnull=True).order_by("-created_at")[:500])
    items = lot_spec_items_by_test(candidates)
    lots = [lot for lot in candidates if items[lot.pk]][:LOTS]
    assert lots, "the dataset has no packaged lot with a specification in force at its pooling"
    now = timezone.now()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["lot_number", "test", "value", "unit", "analyst", "tested_at", "instrument", "reason"])
    for n in range(ROWS):
        lot = lots[n % len(lots)]
        tests = list(items[lot.pk].values())
        item = tests[(n // len(lots)) % len(tests)]
        late = n % LATE_EVERY == 1
        tested = now - (timedelta(days=2, seconds=n) if late else timedelta(hours=1))
        writer.writerow([lot.lot_number, item.test, _value(item, n % FAILING_EVERY == 0),
                         "" if item.limit_kind == "qualitative" else item.unit, "lab1", tested.isoformat(),
                         "HPLC-2", f"plate {n} exported late" if late else ""])
    return out.getvalue().encode()


def _stored(model, pks: list[int]) -> list[dict]:
    return list(model.objects.filter(pk__in=pks).order_by("pk").values())


def _capture(data: bytes, actor) -> dict:
    """One import, rolled back: the rows and entries it wrote, for the floor to write again."""
    from cmlims.investigations.models import Investigation
    from cmlims.models import AuditEntry
    from qc.models import QCResult, ResultImport
    from qc.services.imports import results_import

    def run() -> dict:
        head = AuditEntry.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0
        original = results_import(data=data, actor=actor, file_name="bench.csv")
        results = list(QCResult.objects.filter(imported_from=original).order_by("pk").values())
        kept = {
            "import": _stored(ResultImport, [original.pk]),
            "results": results,
            "investigations": list(Investigation.objects.filter(object_id__in=[str(r["id"]) for r in results],
                                                                 kind="oos").order_by("pk").values()),
            "entries": list(AuditEntry.objects.filter(sequence__gt=head).order_by("sequence").values()),
        }
        return kept

    return _rolled_back(run)


def _without_id(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def _chained(entries: list[dict]) -> list[dict]:
    """The captured entries chained again after the current head, as ``append_entries`` does."""
    from cmlims.audit import chain_head, hmac_key, to_jsonable
    from cmlims.audit.hashing import canonical_values

    head = chain_head()
    key = hmac_key()
    prev = head.hash
    out = []
    for offset, entry in enumerate(entries, start=1):
        values = {**entry, "id": None, "sequence": head.sequence + offset, "prev_hash": prev,
                  "at": to_jsonable(entry["at"]), "occurred_at": to_jsonable(entry["occurred_at"])}
        values["hash"] = prev = hmac.new(key, (prev + canonical_values(values)).encode(),
                                         hashlib.sha256).hexdigest()
        out.append({**values, "at": entry["at"], "occurred_at": entry["occurred_at"]})
    return out


def _floor(kept: dict) -> None:
    from cmlims.audit import audited_write
    from cmlims.investigations.models import Investigation
    from cmlims.models import AuditEntry
    from qc.models import QCResult, ResultImport

    def run() -> None:
        with audited_write():
            ResultImport.objects.bulk_create([ResultImport(**v) for v in kept["import"]])
            QCResult.objects.bulk_create([QCResult(**v) for v in kept["results"]], batch_size=2000)
            Investigation.objects.bulk_create([Investigation(**v) for v in kept["investigations"]])
            AuditEntry.objects.bulk_create([AuditEntry(**v) for v in _chained(_without_id(kept["entries"]))],
                                           batch_size=2000)

    _rolled_back(run)


def _copy(kept: dict) -> None:
    """The same result rows and entries by COPY (the fastest way PostgreSQL takes rows)."""
    from django.db import connection

    from cmlims.audit import audited_write
    from cmlims.audit.hashing import canonical_json
    from cmlims.models import AuditEntry
    from qc.models import QCResult, ResultImport

    def copy_rows(model, rows: list[dict], columns: list[str], adapt=lambda c, v: v) -> None:
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608
            for row in rows:
                copy.write_row([adapt(c, row[c]) for c in columns])

    def run() -> None:
        with audited_write():
            ResultImport.objects.bulk_create([ResultImport(**v) for v in kept["import"]])
        results = kept["results"]
        copy_rows(QCResult, results, [c for c in results[0] if c != "id"])
        entries = _chained(_without_id(kept["entries"]))
        copy_rows(AuditEntry, entries, [c for c in entries[0] if c != "id"],
                  lambda c, v: canonical_json(v) if c == "changes" else v)

    _rolled_back(run)


def _media_to_temporary_folder() -> None:
    from django.test.utils import override_settings

    folder = tempfile.mkdtemp(prefix="cmlims-bench-import-")
    override_settings(MEDIA_ROOT=folder).enable()
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


def import_cases() -> list[Case]:
    from django.contrib.auth import get_user_model

    from qc.services.imports import results_import

    _media_to_temporary_folder()
    actor = get_user_model().objects.get(username="lab1")
    data = export_csv()
    kept = _capture(data, actor)
    failing = len(kept["investigations"])
    copy_s = min(_timed(lambda: _copy(kept)) for _ in range(3))

    def measured() -> None:
        _rolled_back(lambda: results_import(data=data, actor=actor, file_name="bench.csv"))

    lots = len({r["lot_id"] for r in kept["results"]})
    return [Case("B6", f"CSV import of {ROWS:,} QC results ({lots} lot(s), {failing} OOS investigations)", measured,
                 lambda: _floor(kept), 2.0, target_text="≤ 2×; ≤ 15 s", items=ROWS, rounds=3, max_ms=15_000,
                 note=f"COPY of the same result rows and entries: {copy_s * 1000:,.0f} ms")]


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start

