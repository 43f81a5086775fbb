"""``verify_audit --records``: replay the trail and compare it with each audited table's current rows.

Every write through the audit services records the row's fields: a creation every audited field as
``[None, value]``, a change each changed field as ``[old, new]``. Folding a row's entries in sequence order
gives what the trail says the row holds; a row that differs was written behind the application (direct SQL),
and each difference is named by table, row and field. A row with no entry at all is named too. Event entries
that are not field changes (a printed label, a failed signature) carry no ``[old, new]`` pairs and are skipped.

The replay holds one dict per audited row in memory; it reads the trail once and each table once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from cmlims.audit import audited_models, object_type_of, to_jsonable
from cmlims.audit.writes import audited_fields


@dataclass(frozen=True)
class RecordMismatch:
    table: str
    row: str
    field: str
    trail: object
    current: object

    def __str__(self) -> str:
        if self.field == "(row)":
            return f"{self.table} row {self.row}: {self.current}"
        return (f"{self.table} row {self.row} field {self.field}: the audit trail says {self.trail!r}, "
                f"the table holds {self.current!r}")


def _same(field: models.Field, trail, current) -> bool:
    """Equal as the field's values (500.0 and 500.000 are one Decimal; an ISO string and its datetime are one
    time), falling back to the stored JSON forms."""
    if to_jsonable(current) == trail:
        return True
    try:
        return field.to_python(trail) == field.to_python(current)
    except Exception:  # noqa: BLE001 - a value the field cannot parse is simply not equal
        return False


def records_verify(*, using: str = "default") -> tuple[int, list[RecordMismatch]]:
    """(rows compared, mismatches) over every concrete audited model."""
    from cmlims.models import AuditEntry

    models_by_type = {object_type_of(m): m for m in audited_models() if not m._meta.abstract}
    state: dict[tuple[str, str], dict] = {}
    entries = (AuditEntry.objects.using(using).filter(object_type__in=list(models_by_type))
               .order_by("sequence").values_list("object_type", "object_id", "changes"))
    for object_type, object_id, changes in entries.iterator(chunk_size=5000):
        pairs = {k: v for k, v in (changes or {}).items() if isinstance(v, list) and len(v) == 2}
        if pairs and len(pairs) == len(changes):
            row = state.setdefault((object_type, object_id), {})
            row.update({k: new for k, (_old, new) in pairs.items()})

    compared, mismatches = 0, []
    for object_type, model in sorted(models_by_type.items()):
        table = model._meta.db_table
        fields = audited_fields(model)
        for row in model._base_manager.using(using).order_by("pk").iterator(chunk_size=2000):
            compared += 1
            replayed = state.get((object_type, str(row.pk)))
            if replayed is None:
                mismatches.append(RecordMismatch(table, str(row.pk), "(row)", None, "no audit entry records it"))
                continue
            for field in fields:
                if field.attname not in replayed:
                    continue
                current = field.value_from_object(row)
                if isinstance(field, models.FileField):  # stored as its name, an empty file as None
                    current = getattr(current, "name", current) or None
                if not _same(field, replayed[field.attname], current):
                    mismatches.append(RecordMismatch(table, str(row.pk), field.attname, replayed[field.attname],
                                                     to_jsonable(current)))
    return compared, mismatches
