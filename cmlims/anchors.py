"""Anchors: stored copies of the chain head that make cutting off the newest entries detectable.

A hash chain proves that no entry was edited or removed from the middle, but not that the newest
entries were not cut off: a shortened chain still verifies. So every signature and every generated
document stores the head at the moment it was made (``cmlims.audit.chain_head()``), and a beat task
copies the head into ``AuditCheckpoint`` every few minutes. ``verify_audit`` checks each stored
anchor against the chain: an anchor pointing past the end, or at an entry with another hash, is a
broken chain.

Apps declare where their anchors live (in their AppConfig.ready, or here for the core's own):

    register_anchor("documents.GeneratedDocument", sequence_field="chain_sequence", hash_field="chain_hash")
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.apps import apps
from django.db import models, transaction
from django.utils import timezone

from cmlims import periodic
from cmlims.audit import audited_write, chain_head, hmac_key, to_jsonable

CHECKPOINT_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class AnchorSource:
    model_label: str  # "app_label.ModelName"
    sequence_field: str
    hash_field: str

    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)


@dataclass(frozen=True)
class Anchor:
    source: str
    object_id: str
    sequence: int
    hash: str


_SOURCES: dict[str, AnchorSource] = {}


def register_anchor(
    model: type[models.Model] | str, *, sequence_field: str = "chain_sequence", hash_field: str = "chain_hash"
) -> None:
    """Declare a model whose rows store a chain head; a label string is resolved lazily (no import cycles)."""
    label = model if isinstance(model, str) else model._meta.label
    _SOURCES[label.lower()] = AnchorSource(label, sequence_field, hash_field)


def anchor_sources() -> list[AnchorSource]:
    return list(_SOURCES.values())


def iter_anchors(*, using: str = "default") -> Iterator[Anchor]:
    """Every stored anchor of every registered model whose app is installed, oldest sequence first per model."""
    for source in anchor_sources():
        try:
            model = source.model()
        except LookupError:
            continue  # the app is not installed in this deployment
        rows = (
            model._base_manager.using(using)
            .filter(**{f"{source.sequence_field}__isnull": False})  # e.g. a document job not yet generated
            .order_by(source.sequence_field)
            .values_list("pk", source.sequence_field, source.hash_field)
        )
        for pk, sequence, chain_hash in rows.iterator(chunk_size=2000):
            yield Anchor(source.model_label, str(pk), int(sequence), chain_hash)


# --- checkpoints --------------------------------------------------------------------------------------


def checkpoint_mac(*, sequence: int, chain_hash: str, at) -> str:
    message = f"checkpoint|{sequence}|{chain_hash}|{to_jsonable(at)}"
    return hmac.new(hmac_key(), message.encode(), hashlib.sha256).hexdigest()


@transaction.atomic
def audit_checkpoint_write():
    """Copy the chain head into a checkpoint unless the newest checkpoint already holds it."""
    from cmlims.models import AuditCheckpoint

    head = chain_head()
    latest = AuditCheckpoint.objects.order_by("-sequence").first()
    if head.sequence == 0 or (latest is not None and latest.sequence == head.sequence):
        return None
    now = timezone.now()
    checkpoint = AuditCheckpoint(
        sequence=head.sequence, hash=head.hash, at=now,
        mac=checkpoint_mac(sequence=head.sequence, chain_hash=head.hash, at=now),
    )
    with audited_write():
        checkpoint.save()
    return checkpoint


register_anchor("cmlims.AuditCheckpoint", sequence_field="sequence", hash_field="hash")
# The core's own anchor tables: every signature (cmlims.esign) and every generated document (cmlims.documents).
register_anchor("esign.Signature", sequence_field="chain_sequence", hash_field="chain_hash")
register_anchor("documents.DocumentJob", sequence_field="chain_sequence", hash_field="chain_hash")
periodic.register("audit-checkpoint", "cmlims.audit_checkpoint", CHECKPOINT_EVERY)
# The whole chain re-verified every night; a broken one is logged as an ERROR for monitoring to pick up.
periodic.register("audit-verify", "cmlims.audit_verify", timedelta(days=1))
