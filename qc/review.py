"""Audit review by exception for the sign-off page (Annex 11 §9), and the lot's full trail as CSV and PDF.

What a reviewer must see first: changes after creation with their reasons, corrections, voids and failed
signatures, grouped by record. Creation entries fold to one line per record; status moves, signatures,
documents and reviews to one list. ``EXCEPTIONS`` is the list of rules: a new kind (late entries, say) is
one entry. Reads only."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from cmlims.audit import Action, chain_head
from cmlims.audit_display import ReadableEntry, readable_entries
from cmlims.exports import formula_neutralised
from cmlims.models import AuditEntry
from cmlims.pipeline import pipeline_routine_fields


def _new(value):
    return value[1] if isinstance(value, list) and len(value) == 2 else value


def _correction(entry: AuditEntry) -> bool:
    return entry.action == Action.CREATED and bool(_new((entry.changes or {}).get("supersedes_id")))




def _overwrites(entry: AuditEntry) -> bool:
    """A change that replaces a recorded value, or that gives a reason. Filling empty fields without one (the
    next step recorded, a verification, an approval, the expiry set at packaging) is the record's normal
    course and is listed with the rest."""
    if entry.action != Action.CHANGED:
        return False
    # Fields only a pipeline moves, each move checked by its rules: a change to them alone is routine.
    if set(entry.changes or {}) <= pipeline_routine_fields(entry.object_type):
        return False  # a status move through its pipeline (allocated, shipped, received): listed with the steps
    # A late entry's reason says why it is late; that is reported once per kind of record (LateGroup).
    return (bool(entry.reason.strip()) and not entry.late_entry) or any(
        isinstance(v, list) and len(v) == 2 and v[0] not in (None, "", []) and v[0] != v[1]
        for v in (entry.changes or {}).values())


# (label, test): the first that matches names why an entry is an exception.
EXCEPTIONS: list[tuple[str, Callable[[AuditEntry], bool]]] = [
    ("voided", lambda e: e.action == Action.VOIDED),
    ("failed signature", lambda e: e.action == Action.SIGNATURE_FAILED),
    ("correction", _correction),
    ("changed after creation", _overwrites),
]


def exception_kind(entry: AuditEntry) -> str:
    for label, test in EXCEPTIONS:
        if test(entry):
            return label
    return ""


@dataclass
class RecordGroup:
    key: tuple[str, str]
    record: str
    entries: list[tuple[str, ReadableEntry]] = field(default_factory=list)  # (exception kind, entry)


@dataclass
class CreatedKind:
    """The records of one kind created in the period (91 vials fold into one line)."""

    kind: str
    items: list[ReadableEntry] = field(default_factory=list)

    @property
    def folded(self) -> bool:
        return len(self.items) > FOLD_ABOVE


FOLD_ABOVE = 3


@dataclass
class LateGroup:
    """Steps entered more than CMLIMS_LATE_ENTRY_HOURS after they happened, one line per kind of record, person
    and reason (a paper record backfilled is one line, not one per vial)."""

    kind: str
    who: str
    reason: str
    records: set[str] = field(default_factory=set)
    entries: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None

    def add(self, item: ReadableEntry) -> None:
        self.records.add(item.entry.object_id)
        self.entries += 1
        when = item.entry.occurred_at or item.entry.at
        self.first = min(self.first or when, when)
        self.last = max(self.last or when, when)


@dataclass
class Review:
    exceptions: list[RecordGroup]
    late: list[LateGroup]
    created: list[ReadableEntry]  # one per record, in the order the records were made
    other: list[ReadableEntry]  # status moves, signatures, documents, reviews
    total: int

    @property
    def created_by_kind(self) -> list[CreatedKind]:
        kinds: dict[str, CreatedKind] = {}
        for item in self.created:
            kinds.setdefault(item.entry.object_type, CreatedKind(kind=item.kind)).items.append(item)
        return list(kinds.values())

    @property
    def exception_count(self) -> int:
        return sum(len(group.entries) for group in self.exceptions)


def review_by_exception(entries: Iterable[AuditEntry]) -> Review:
    readable = readable_entries(entries)
    groups: dict[tuple[str, str], RecordGroup] = {}
    late: dict[tuple[str, str, str], LateGroup] = {}
    created, other = [], []
    for item in readable:
        entry = item.entry
        if entry.late_entry:
            late_key = (item.kind or entry.object_type, item.who, entry.reason)
            late.setdefault(late_key, LateGroup(*late_key)).add(item)
        kind = exception_kind(entry)
        key = (entry.object_type, entry.object_id)
        if kind:
            groups.setdefault(key, RecordGroup(key=key, record=item.record)).entries.append((kind, item))
        elif entry.action == Action.CREATED:
            created.append(item)
        else:
            other.append(item)
    return Review(exceptions=list(groups.values()), late=list(late.values()), created=created, other=other,
                  total=len(readable))


# --- the full trail as an inspector asks for it -------------------------------------------------------------

TRAIL_HEADER = ["sequence", "time (UTC)", "user", "action", "record", "field", "old", "new", "reason"]


def trail_lines(entries: Iterable[AuditEntry]) -> list[list[str]]:
    """One line per changed field (an entry without fields: one line), values readable."""
    lines = []
    for item in readable_entries(entries):
        e = item.entry
        head = [str(e.sequence), e.at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"), item.who,
                e.get_action_display(), item.record]
        for i, (label, old, new) in enumerate(item.changes or [("", "", "")]):
            lines.append([*head, label, old, new, e.reason if i == 0 else ""])
    return lines


def trail_csv(entries: Iterable[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TRAIL_HEADER)
    for line in trail_lines(entries):
        writer.writerow([formula_neutralised(cell) for cell in line])
    return out.getvalue()


def trail_pdf(*, lot, entries: Iterable[AuditEntry], user) -> bytes:
    from cmlims.audit_display import printed_name
    from cmlims.documents.reports import Report, Section, render_report

    lines = trail_lines(entries)
    report = Report(
        title=f"Audit trail of lot {lot.lot_number}", document_id=f"Audit trail {lot.lot_number}",
        chain_head=chain_head(), generated_by=printed_name(user), generated_at=timezone.now(),
        subtitle=f"{lot.product} · {len(lines)} lines",
        sections=[Section(heading="Entries", table_header=TRAIL_HEADER, table_rows=lines,
                          column_widths=[0.06, 0.12, 0.1, 0.08, 0.16, 0.12, 0.12, 0.12, 0.12])],
    )
    return render_report(report)
