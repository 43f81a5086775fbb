"""Core periodic tasks (thin: each calls one service)."""

from celery import shared_task

from cmlims.anchors import audit_checkpoint_write


@shared_task(name="cmlims.audit_checkpoint")
def audit_checkpoint() -> int | None:
    """Copy the audit chain head into a checkpoint (beat, every few minutes); returns its sequence."""
    checkpoint = audit_checkpoint_write()
    return checkpoint.sequence if checkpoint else None
