"""Bulk import of instrument exports: synchronous and all-or-nothing.

Every row is checked before anything is written; any problem answers 400 with every row's errors
(``rows: [{row, column, problem}]``, row = 1-based data row) and writes nothing. A good file is written in
one transaction through the audit's bulk paths (one audit entry per row), with an OOS investigation for
every failing result. Lookups are batched (lots, specs, users, unit factors), so 10,000 rows is one request.

The file itself is kept as received (``ResultImport``: a stored file re-hashed by ``verify_audit``, its SHA-256
in the import's audit entry), and every result points to it. A row tested more than CMLIMS_LATE_ENTRY_HOURS
ago needs a ``reason`` (optional column) and its audit entry is marked as a late entry.
"""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from batches.locks import lots_lock
from batches.models import CMLot
from cmlims import roles
from cmlims.audit import audited_bulk_create, audited_save
from cmlims.exceptions import InvalidInput
from cmlims.investigations.models import Kind
from cmlims.investigations.services import investigations_open_bulk
from qc.evaluation import ValueProblem
from qc.models import QCResult, ResultImport, ResultSource
from qc.selectors import lot_spec_items_by_test, related_lot_numbers_bulk
from qc.services.results import (
    ANALYST_ROLES,
    ENTRY_ROLES,
    analyst_problem,
    build_result,
    lot_open_problem,
    oos_details_text,
    oos_title,
    tested_at_check,
    tested_at_previous,
    tested_at_problem,
)

COLUMNS = ("lot_number", "test", "value", "unit", "analyst", "tested_at", "instrument", "reason")
# The stored columns' sizes (QCResult): checked here because the bulk path skips per-row full_clean().
MAX_LENGTHS = {"value": 100, "unit": 40, "instrument": 120}
REQUIRED = ("lot_number", "test", "value", "analyst", "tested_at")
MAX_ROWS = 50_000


class ImportRejected(InvalidInput):
    """400 with ``rows``: every problem of every row; nothing was written."""

    def __init__(self, rows: list[dict], total: int) -> None:
        bad = len({r["row"] for r in rows if r["row"]})
        super().__init__(f"{len(rows)} problem(s) in {bad} of {total} row(s); nothing was imported",
                         rows=rows)


def _file_problem(problem: str) -> ImportRejected:
    return ImportRejected([{"row": 0, "column": "", "problem": problem}], 0)


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is not part of the header
    except UnicodeDecodeError as exc:
        raise _file_problem("the file is not UTF-8 text") from exc
    if "\x00" in text:  # a binary file named .csv; PostgreSQL cannot even look a NUL up
        raise _file_problem("the file contains NUL characters: it is not a CSV text export")
    return text


def _parse_time(text: str) -> tuple[datetime | None, str | None]:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None, f"'{text}' is not an ISO 8601 date-time"
    return value, tested_at_problem(value)


def _rows(text: str) -> tuple[list[dict], list[dict]]:
    try:
        return _rows_read(text)
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB limit
        return [], [{"row": 0, "column": "", "problem": f"the file is not readable CSV ({exc})"}]


def _rows_read(text: str) -> tuple[list[dict], list[dict]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED + ("unit", "instrument") if c not in header]
    if missing:
        return [], [{"row": 0, "column": c, "problem": "column missing from the header"} for c in missing]
    reader.fieldnames = header
    rows = [{k: (v or "").strip() for k, v in row.items() if k in COLUMNS} for row in reader]
    if not rows:
        return [], [{"row": 0, "column": "", "problem": "the file has no data rows"}]
    if len(rows) > MAX_ROWS:
        return [], [{"row": 0, "column": "", "problem": f"more than {MAX_ROWS} rows; split the file"}]
    return rows, []


IMPORT_REASON = "imported from an instrument export"


def _original_store(*, data: bytes, file_name: str, actor, count: int) -> ResultImport:
    """The export as received, kept as a stored file with its SHA-256 (in the record and its audit entry)."""
    name = (file_name or "results.csv").replace("\\", "/").rsplit("/", 1)[-1][:200] or "results.csv"
    record = ResultImport(file_name=name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                          imported_by=actor, imported_at=timezone.now(), result_count=count)
    record.original.save(name, ContentFile(data), save=False)
    return audited_save(record, actor=actor, reason=IMPORT_REASON)


def results_import(*, data: bytes, actor, file_name: str = "") -> ResultImport:
    """Import a CSV export (columns: lot_number, test, value, unit, analyst, tested_at, instrument; optional
    reason). Answers the stored original (``ResultImport``), which names how many results it created."""
    roles.require_role(actor, ENTRY_ROLES, "Importing QC results")
    rows, problems = _rows(_decode(data))
    if problems:
        raise ImportRejected(problems, len(rows))
    with transaction.atomic():
        results = _validate(rows, actor, problems)
        if problems:
            raise ImportRejected(problems, len(rows))
        original = _original_store(data=data, file_name=file_name, actor=actor, count=len(results))
        # One insert and one chain append for every row, late or not: a late row's entry carries its own
        # reason and test time (the query count does not grow with the rows' mix of times).
        own_entry: dict[int, tuple[str, datetime | None]] = {}
        for result, late, reason in results:
            result.imported_from = original
            if late:
                own_entry[id(result)] = (reason, result.tested_at)
        created = audited_bulk_create(QCResult, [r for r, _late, _reason in results], actor=actor,
                                      reason=IMPORT_REASON, clean=False,
                                      entry_for=lambda r: own_entry.get(id(r), (IMPORT_REASON, None)))
        failing = [r for r in created if not r.passed]
        related = related_lot_numbers_bulk(list({r.lot_id: r.lot for r in failing}.values()))
        investigations_open_bulk(items=[(r, Kind.OOS, oos_title(r), oos_details_text(related[r.lot_id]))
                                        for r in failing], actor=actor)
    return original


def _validate(rows: list[dict], actor, problems: list[dict]) -> list[tuple[QCResult, bool, str]]:
    """(result, late entry, reason) for every row, or problems appended."""
    lot_numbers = sorted({r["lot_number"] for r in rows if r["lot_number"]})
    # Lock the lots in a fixed order: no sign-off can slip in between the check and the write.
    lots = {lot.lot_number: lot for lot in lots_lock(CMLot.objects.filter(lot_number__in=lot_numbers))}
    usernames = {r["analyst"] for r in rows if r["analyst"]}
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)
             .prefetch_related("groups")}
    for user in users.values():
        user._cmlims_roles = {g.name for g in user.groups.all() if g.name in ANALYST_ROLES + (roles.INTEGRATION,)}
    items_by_lot = lot_spec_items_by_test(list(lots.values()))
    now = timezone.now()
    results: list[QCResult] = []

    def problem(row: int, column: str, text: str) -> None:
        problems.append({"row": row, "column": column, "problem": text})

    for number, row in enumerate(rows, start=1):
        before = len(problems)
        for column in REQUIRED:
            if not row.get(column):
                problem(number, column, "required")
        for column, limit in MAX_LENGTHS.items():
            if len(row.get(column, "")) > limit:
                problem(number, column, f"longer than {limit} characters")
        lot = lots.get(row["lot_number"]) if row["lot_number"] else None
        if row["lot_number"] and lot is None:
            problem(number, "lot_number", f"no lot '{row['lot_number']}'")
        elif lot is not None and (closed := lot_open_problem(lot)):
            problem(number, "lot_number", closed)
        item = None
        if lot is not None and row["test"]:
            item = items_by_lot[lot.pk].get(row["test"].casefold())
            if item is None:
                problem(number, "test", f"'{row['test']}' is not a test of lot {lot.lot_number}'s specification"
                        if items_by_lot[lot.pk] else f"no specification was in force when {lot.lot_number} was pooled")
        analyst = users.get(row["analyst"]) if row["analyst"] else None
        if row["analyst"]:
            trouble = f"no user '{row['analyst']}'" if analyst is None else analyst_problem(analyst)
            if trouble:
                problem(number, "analyst", trouble)
        tested_at, late = None, False
        if row["tested_at"]:
            tested_at, trouble = _parse_time(row["tested_at"])
            if trouble:
                problem(number, "tested_at", trouble)
            elif lot is not None:
                previous, previous_name = tested_at_previous(lot)
                time_errors, late = tested_at_check(tested_at, reason=row.get("reason", ""), previous=previous,
                                                    previous_name=previous_name)
                for column, texts in time_errors.items():
                    for text in texts:
                        problem(number, column, text + (" (column reason)" if column == "reason" else ""))
        if item is not None and row["value"]:
            try:
                result = build_result(lot=lot, item=item, value=row["value"], unit=row.get("unit", ""),
                                      analyst=analyst, instrument=row.get("instrument", ""), tested_at=tested_at,
                                      actor=actor, source=ResultSource.IMPORT)
            except ValueProblem as exc:
                problem(number, exc.field, exc.problem)
            else:
                result.entered_at = now
                if len(problems) == before:
                    results.append((result, late, row.get("reason", "")))
    return results
