"""Keeping the stored signature checks current (``cmlims.esign.services.signature_checks_refresh``)."""

from datetime import timedelta

from celery import shared_task

from cmlims import periodic
from cmlims.esign.services import signature_checks_refresh


@shared_task(name="cmlims.signature_checks_refresh")
def signature_checks_refresh_task() -> dict:
    """Recompute the checks a write marked stale since the last run (list pages check those live meanwhile)."""
    return signature_checks_refresh()


@shared_task(name="cmlims.signature_checks_sweep")
def signature_checks_sweep() -> dict:
    """Recompute every check: a change made outside the services marks nothing stale; this finds it."""
    return signature_checks_refresh(everything=True)


periodic.register("signature-checks-refresh", "cmlims.signature_checks_refresh", every=timedelta(minutes=1))
periodic.register("signature-checks-sweep", "cmlims.signature_checks_sweep", every=timedelta(days=1))
