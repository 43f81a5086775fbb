"""Core periodic tasks (thin: each calls one service or selector)."""

import logging
from datetime import timedelta

from celery import shared_task

from cmlims import periodic
from cmlims.anchors import audit_checkpoint_write
from cmlims.logins import login_failure_counts_sweep, login_lock_expiries_sweep
from cmlims.verification import audit_chain_verify

logger = logging.getLogger("cmlims.audit")


@shared_task(name="cmlims.audit_checkpoint")
def audit_checkpoint() -> int | None:
    """Copy the audit chain head into a checkpoint (beat, every few minutes); returns its sequence."""
    checkpoint = audit_checkpoint_write()
    return checkpoint.sequence if checkpoint else None


@shared_task(name="cmlims.audit_verify")
def audit_verify() -> dict:
    """The nightly verify_audit: a broken chain is logged as an ERROR (for monitoring) and returned."""
    report = audit_chain_verify()
    if not report.ok:
        logger.error("%s", report.summary())
    return {"ok": report.ok, "entries": report.entries, "summary": report.summary()}


@shared_task(name="cmlims.login_failures_sweep", ignore_result=True)
def login_failures_sweep() -> int:
    """The failed-login counts of closed windows and the ends of login locks that ran out into the trail
    (cmlims.logins); returns the entries written."""
    return login_failure_counts_sweep() + login_lock_expiries_sweep()


periodic.register("login-failures-sweep", "cmlims.login_failures_sweep", every=timedelta(minutes=1))
