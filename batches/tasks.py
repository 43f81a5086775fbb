"""Periodic manufacturing tasks (thin: each calls one service)."""

from celery import shared_task

from .services.lots import lots_expire_due


@shared_task(name="batches.lots_expire")
def lots_expire() -> list[str]:
    """released → expired for lots past their expiry date (DESIGN.md rule table: automatic)."""
    return lots_expire_due()

