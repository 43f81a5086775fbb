"""Row locks of the core's own rows: every ``select_for_update`` of ``cmlims`` and its sub-apps lives here.

The core's rows (a row the audit write API is about to change, API tokens, signing-failure counters,
investigations, document jobs) are locked AFTER the app rows a caller already holds (lot → vials → shipment,
see ``batches/locks.py``): one row at a time, or several in primary-key order, and always ``of=("self",)``
so that a joined row (a job's requester, say) is never locked with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models
from django.db.models import QuerySet

M = TypeVar("M", bound=models.Model)


def record_lock(model: type[M], pk: Any) -> M:
    """One row of ``model`` (all rows, voided ones too) under a lock; DoesNotExist when there is none."""
    return model._base_manager.select_for_update(of=("self",)).get(pk=pk)


def records_lock(model: type[M], pks: Iterable[Any]) -> list[M]:
    """The rows of ``model`` with these keys under a lock, in primary-key order."""
    return list(model._base_manager.filter(pk__in=list(pks)).select_for_update(of=("self",)).order_by("pk"))


def queryset_lock(queryset: QuerySet[M]) -> list[M]:
    """The rows of ``queryset`` under a lock, in primary-key order (its select_related rows stay unlocked)."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk"))


def queryset_lock_skip_held(queryset: QuerySet[M]) -> list[M]:
    """The rows of ``queryset`` that no other transaction holds, under a lock, in primary-key order (a sweep
    leaves the rows another sweep is ending)."""
    return list(queryset.select_for_update(of=("self",), skip_locked=True).order_by("pk"))


def api_token_lock(token) -> Any:
    from cmlims.models import ApiToken

    return record_lock(ApiToken, token.pk)


def signing_failure_lock(user) -> Any:
    """The user's signing-failure counter under a lock, created on first use (five failures lock signing)."""
    from cmlims.esign.models import SigningFailure

    state, _ = SigningFailure.objects.select_for_update(of=("self",)).get_or_create(user=user)
    return state


def investigation_lock(investigation) -> Any:
    from cmlims.investigations.models import Investigation

    return record_lock(Investigation, investigation.pk)


def document_job_lock(job_id: int) -> Any:
    """The job row under a lock, with its requester read along but not locked."""
    from cmlims.documents.models import DocumentJob

    return DocumentJob.objects.select_for_update(of=("self",)).select_related("requested_by").get(pk=job_id)


def printer_lock(printer) -> Any:
    from cmlims.printing.models import Printer

    return record_lock(Printer, getattr(printer, "pk", printer))
