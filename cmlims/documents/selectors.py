"""Reads of document jobs and label prints (status, downloads, label reconciliation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Sum

from cmlims.documents.models import DocumentJob, JobStatus, LabelDisposition, LabelPrint
from cmlims.documents.registry import builder_get
from cmlims.exceptions import NotFound
from cmlims.printing.selectors import dispatch_body, job_dispatch


def document_job_get_for_user(*, job_id: int, user) -> DocumentJob:
    """The job, if ``user`` may see it: the same permission as requesting it (404 / 403 otherwise)."""
    job = DocumentJob.objects.select_related("requested_by", "dispatch__printer").filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"Document job {job_id} does not exist.")
    builder_get(job.kind).permission_check(user, job.params)
    return job


def document_job_payload(job: DocumentJob, *, download_url: str | None) -> dict:
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "attempts": job.attempts,
        "subject": job.subject_repr,
        "requested_by": job.requested_by.get_username(),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "download": download_url if job.status == JobStatus.DONE else None,
        "filename": job.output_name or None,
        "sha256": job.sha256 or None,
        "chain_head": {"sequence": job.chain_sequence, "hash": job.chain_hash} if job.chain_hash else None,
        "error": job.error or None,
        "print": dispatch_body(job_dispatch(job)),  # null unless sent to a printer
    }


def label_prints_for_subject(*, subject_type: str, subject_id: str):
    return LabelPrint.objects.filter(subject_type=subject_type, subject_id=str(subject_id)).select_related(
        "printed_by"
    )


def label_dispositions_for_subject(*, subject_type: str, subject_id: str):
    """Labels recorded destroyed or returned for a subject, oldest first."""
    return LabelDisposition.objects.filter(subject_type=subject_type, subject_id=str(subject_id)).select_related(
        "recorded_by", "replaced_by")


def label_print_exists(
    *, subject_type: str, subject_id: str, template: str, kind: str, item_keys: Iterable[str]
) -> set[str]:
    """The item keys among ``item_keys`` that already have a label of this template and kind."""
    return set(
        label_prints_for_subject(subject_type=subject_type, subject_id=subject_id)
        .filter(template=template, kind=kind, item_key__in=list(item_keys))
        .values_list("item_key", flat=True)
    )


@dataclass
class ReconciliationRow:
    """Labels of one template and kind (211.125/211.130): issued − used − destroyed − returned = unaccounted.

    Used is one label per item that still has one out (each vial, carton or shipment wears one label); every
    other label issued must be recorded as destroyed (a reprint records the one it replaces) or returned."""

    template: str
    kind: str
    items_labelled: int  # distinct items with at least one label
    labels_issued: int  # sum of copies
    reprints: int  # prints of an item that already had one
    used: int = 0
    destroyed: int = 0  # recorded destroyed, the labels reprints replaced included
    returned: int = 0
    unaccounted: int = 0  # issued − used − destroyed − returned: must be 0
    unexpected: list[str] = field(default_factory=list)  # labelled keys not among the expected items
    unlabelled: int = 0  # expected items without a label of this kind

    @property
    def detail(self) -> str:
        """The row in words (release checklist, batch record)."""
        return (f"{self.template} {self.kind} labels: {self.labels_issued} issued, {self.used} used, "
                f"{self.destroyed} destroyed, {self.returned} returned, {self.unaccounted} unaccounted for")


@dataclass
class LabelReconciliation:
    expected_items: int
    rows: list[ReconciliationRow]

    @property
    def unaccounted(self) -> int:
        return sum(row.unaccounted for row in self.rows)

    @property
    def balanced(self) -> bool:
        """Every label issued is accounted for, none for an item that does not exist, and items to label have
        labels (a packaged lot with no labels issued is not balanced)."""
        if self.expected_items and not self.rows:
            return False
        return all(not row.unexpected and not row.unaccounted for row in self.rows)

    def conditions(self, subject: str) -> list[dict]:
        """``labels_unreconciled``, one per row with labels unaccounted for (a release checklist condition)."""
        return [{"code": "labels_unreconciled", "detail": f"labels of {subject} do not reconcile: {row.detail}"
                 + (f" (labels for items that are not part of it: {', '.join(row.unexpected[:10])})"
                    if row.unexpected else "")}
                for row in self.rows if row.unaccounted]


def label_item_counts(*, subject_type: str, subject_id: str) -> dict[tuple[str, str], dict[str, dict[str, int]]]:
    """Per (template, kind) and item key: labels ``issued``, ``prints``, ``destroyed`` and ``returned`` (two
    queries)."""
    items: dict[tuple[str, str], dict[str, dict[str, int]]] = {}

    def item(template: str, kind: str, key: str) -> dict[str, int]:
        return items.setdefault((template, kind), {}).setdefault(
            key, {"issued": 0, "prints": 0, "destroyed": 0, "returned": 0})

    prints = (LabelPrint.objects.filter(subject_type=subject_type, subject_id=str(subject_id))
              .order_by("id").values_list("template", "kind", "item_key", "copies"))
    for template, kind, key, copies in prints:
        counts = item(template, kind, key)
        counts["issued"] += copies
        counts["prints"] += 1
    dispositions = (LabelDisposition.objects.filter(subject_type=subject_type, subject_id=str(subject_id))
                    .values("template", "kind", "item_key", "disposition").annotate(labels=Sum("count")).order_by())
    for row in dispositions:
        item(row["template"], row["kind"], row["item_key"])[row["disposition"]] += row["labels"] or 0
    return items


def label_on_item(counts: dict[str, int]) -> int:
    """Labels of an item issued and neither destroyed nor returned."""
    return counts["issued"] - counts["destroyed"] - counts["returned"]


def label_used(counts: dict[str, int], *, exists: bool = True) -> int:
    """Labels of an item in use: the one it wears, if a label of it is still out (a vial, carton or box wears
    one; a second copy is destroyed or returned, or it stays unaccounted); none for an item that does not exist."""
    return min(label_on_item(counts), 1) if exists else 0


def label_reconciliation(
    *, subject_type: str, subject_id: str, expected_keys: dict[str, Iterable[str] | None],
) -> LabelReconciliation:
    """Labels issued for a subject (a lot, a shipment) per template and kind, each accounted for as used,
    destroyed or returned. ``expected_keys`` names, per template, the items that exist (a lot's vial serials;
    ``None``: any item labelled exists, e.g. cartons); ``expected_items`` counts the first template's."""
    expected = {template: (set(keys) if keys is not None else None) for template, keys in expected_keys.items()}
    rows = []
    for (template, kind), per_item in sorted(label_item_counts(subject_type=subject_type,
                                                                subject_id=subject_id).items()):
        known = expected.get(template)
        row = ReconciliationRow(template=template, kind=kind, items_labelled=0, labels_issued=0, reprints=0)
        for key, c in per_item.items():
            on_hand = label_on_item(c)
            exists = known is None or key in known
            used = max(0, label_used(c, exists=exists))
            row.labels_issued += c["issued"]
            row.destroyed += c["destroyed"]
            row.returned += c["returned"]
            row.used += used
            row.unaccounted += on_hand - used
            if c["prints"]:
                row.items_labelled += 1
                row.reprints += c["prints"] - 1
            if not exists and c["issued"]:
                row.unexpected.append(key)
        if known is not None:
            row.unlabelled = len(known - {k for k, c in per_item.items() if label_on_item(c) >= 1})
        row.unexpected.sort()
        rows.append(row)
    first = next(iter(expected.values()), None)
    return LabelReconciliation(expected_items=len(first) if first is not None else 0, rows=rows)
