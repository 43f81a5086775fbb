"""Reads of document jobs and label prints (status, downloads, label reconciliation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Sum

from cmlims.documents.models import DocumentJob, JobStatus, LabelPrint
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
    template: str
    kind: str
    items_labelled: int  # distinct items with at least one label
    labels_issued: int  # sum of copies
    reprints: int  # prints of an item that already had one
    unexpected: list[str] = field(default_factory=list)  # labelled keys not among the expected items


@dataclass
class LabelReconciliation:
    expected_items: int
    rows: list[ReconciliationRow]

    @property
    def balanced(self) -> bool:
        """No label for an item that does not exist, no item labelled more than once without a reprint, and
        items to label have labels (a packaged lot with no labels issued is not balanced)."""
        if self.expected_items and not self.rows:
            return False
        return all(not row.unexpected and row.items_labelled <= self.expected_items for row in self.rows)


def label_reconciliation(
    *, subject_type: str, subject_id: str, expected_keys: Iterable[str], template: str = "vial"
) -> LabelReconciliation:
    """Labels issued for a subject (a lot) against the items it shows (its vials): two queries."""
    expected = set(expected_keys)
    prints = label_prints_for_subject(subject_type=subject_type, subject_id=subject_id).filter(template=template)
    rows = []
    summary = prints.values("kind").annotate(
        items=Count("item_key", distinct=True), labels=Sum("copies"), prints=Count("id"),
    ).order_by("kind")
    keys_by_kind: dict[str, set[str]] = {}
    for kind, key in prints.values_list("kind", "item_key").distinct():
        keys_by_kind.setdefault(kind, set()).add(key)
    for row in summary:
        rows.append(ReconciliationRow(
            template=template, kind=row["kind"], items_labelled=row["items"], labels_issued=row["labels"] or 0,
            reprints=row["prints"] - row["items"],
            unexpected=sorted(keys_by_kind.get(row["kind"], set()) - expected),
        ))
    return LabelReconciliation(expected_items=len(expected), rows=rows)
