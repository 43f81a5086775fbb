"""Row locks of the manufacturing app, in one place (Saleor's ``lock_objects`` style).

Every service that changes a row re-reads it here, under ``SELECT ... FOR UPDATE OF <table>`` (only the row
itself, never the rows joined in by ``select_related``), several rows always in primary-key order.

Lock order, across apps (take only the ones you need, but never in another order):

    product → harvests → lot(s) → vials → shipment (``batches.shipping.locks``) → other rows

Two transactions that lock overlapping rows in the same order wait for each other instead of deadlocking
(e.g. packing a shipment and allocating more vials of the same lot into it;
see tests/batches/shipping/test_concurrency.py).
On SQLite these are no-ops: its IMMEDIATE transactions already serialise writers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models
from django.db.models import QuerySet

from cmlims.exceptions import NotFound

from .models import CMLot, Harvest, LotNumberSequence, Product, Vial

M = TypeVar("M", bound=models.Model)


def row_lock(model: type[M], pk: Any, queryset: QuerySet[M] | None = None) -> M:
    """One row of ``model`` under a lock (404 when it does not exist); for rows no aggregate lock covers."""
    query = queryset if queryset is not None else model._base_manager.all()
    try:
        return query.select_for_update(of=("self",)).get(pk=pk)
    except model.DoesNotExist as exc:
        raise NotFound(f"{model._meta.verbose_name} {pk} does not exist") from exc


def rows_lock(queryset: QuerySet[M]) -> list[M]:
    """The rows of ``queryset`` under a lock, in primary-key order."""
    return list(queryset.select_for_update(of=("self",)).order_by("pk"))


def product_lock(product: Product) -> Product:
    return row_lock(Product, product.pk)


def harvests_lock(pks: Iterable[int]) -> list[Harvest]:
    return rows_lock(Harvest.objects.select_related("culture").filter(pk__in=sorted(set(pks))))


def lot_lock(lot: CMLot | str) -> CMLot:
    """The lot (a ``CMLot`` or its lot number) under a lock, with its product; 404 when there is none."""
    query = CMLot.objects.select_for_update(of=("self",)).select_related("product")
    try:
        if isinstance(lot, CMLot):
            return query.get(pk=lot.pk)
        return query.get(lot_number=lot)
    except CMLot.DoesNotExist as exc:
        raise NotFound(f"lot {lot} does not exist") from exc


def lots_lock(queryset: QuerySet[CMLot] | None = None, *, pks: Iterable[int] | None = None) -> list[CMLot]:
    """Several lots (a queryset, or ids) under a lock, with their products, in id order."""
    query = queryset if queryset is not None else CMLot.objects.filter(pk__in=sorted(set(pks or ())))
    return rows_lock(query.select_related("product"))


def vials_lock(queryset: QuerySet[Vial] | None = None, *, pks: Iterable[int] | None = None) -> list[Vial]:
    """Several vials (a queryset, or ids) under a lock, with their lots (not locked here), in id order."""
    query = queryset if queryset is not None else Vial.objects.filter(pk__in=sorted(set(pks or ())))
    return rows_lock(query.select_related("lot"))


def vials_lock_unclaimed(queryset: QuerySet[Vial], *, limit: int) -> list[Vial]:
    """Up to ``limit`` vials of ``queryset`` (in its order) that no other transaction holds, now locked.

    SKIP LOCKED never waits, so it may come after the shipment lock without breaking the lock order.
    """
    return list(queryset.select_for_update(of=("self",), skip_locked=True)[:limit])


def vial_lock(vial: Vial) -> Vial:
    return row_lock(Vial, vial.pk)


def lot_number_sequence_lock(*, prefix: str, year: int) -> LotNumberSequence | None:
    """The year's lot-number counter under a lock, or None before the year's first lot."""
    return LotNumberSequence.objects.select_for_update().filter(prefix=prefix, year=year).first()
