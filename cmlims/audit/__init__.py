"""The audit trail: one append-only, HMAC-chained table, written in the same transaction as the change.

Services never call ``Model.save()`` on an audited model: they call ``audited_create``,
``audited_update``, ``audited_save``, ``audited_void`` or the bulk variants here, each of
which writes the row(s) and one audit entry per row. Anything else raises ``UnauditedWrite``
(see ``AuditedModel``), so a forgotten path fails loudly instead of leaving a gap.

The package's seams: ``hashing`` (canonical form, HMAC), ``chain`` (appending entries),
``writes`` (the write API), ``models`` (the guarded base models) and ``guard`` (the flag the
write API raises and the models check). Import from ``cmlims.audit``: what is listed in
``__all__`` is the public face.
"""

from cmlims.audit.chain import (
    COPY_THRESHOLD,
    GENESIS_HASH,
    Action,
    ChainHead,
    PendingEntry,
    append_entries,
    audit_record,
    chain_head,
    entries_deferred,
    late_entry,
    object_type_of,
    register_append_listener,
)
from cmlims.audit.guard import UnauditedWrite, audited_write, write_allowed
from cmlims.audit.hashing import canonical_json, entry_canonical, hmac_key, to_jsonable
from cmlims.audit.models import AuditedModel, AuditedQuerySet, VoidableModel, audited_models
from cmlims.audit.writes import (
    audited_bulk_create,
    audited_bulk_update,
    audited_create,
    audited_queryset_update,
    audited_save,
    audited_update,
    audited_void,
    diff,
    snapshot,
)

__all__ = [
    "COPY_THRESHOLD",
    "GENESIS_HASH",
    "Action",
    "AuditedModel",
    "AuditedQuerySet",
    "ChainHead",
    "PendingEntry",
    "UnauditedWrite",
    "VoidableModel",
    "append_entries",
    "audit_record",
    "audited_bulk_create",
    "audited_bulk_update",
    "audited_create",
    "audited_models",
    "audited_queryset_update",
    "audited_save",
    "audited_update",
    "audited_void",
    "entries_deferred",
    "audited_write",
    "canonical_json",
    "chain_head",
    "diff",
    "entry_canonical",
    "hmac_key",
    "late_entry",
    "object_type_of",
    "register_append_listener",
    "snapshot",
    "to_jsonable",
    "write_allowed",
]
