"""Row locks of the QC app, in one place; the order continues ``batches.locks``:

    product → specification → its items;   lot → its results

Lots are locked with ``batches.locks.lot_lock`` / ``lots_lock`` (the lot belongs to batches).
"""

from __future__ import annotations

from django.db.models import QuerySet

from batches.locks import row_lock, rows_lock
from qc.models import QCResult, Specification, SpecItem


def specification_lock(specification: Specification | int) -> Specification:
    return row_lock(Specification, getattr(specification, "pk", specification))


def specifications_lock(queryset: QuerySet[Specification]) -> list[Specification]:
    return rows_lock(queryset)


def spec_item_lock(item: SpecItem) -> SpecItem:
    return row_lock(SpecItem, item.pk)


def result_lock(result: QCResult) -> QCResult:
    """The result under a lock, with its lot and specification item (not locked)."""
    return row_lock(QCResult, result.pk, QCResult.objects.select_related("lot", "spec_item"))
