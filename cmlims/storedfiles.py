"""Stored files checked against the SHA-256 recorded when they were stored (``manage.py verify_audit``).

A record that keeps a file (a generated document, a result's raw-data attachment) stores the file's SHA-256
beside it, and the audit entry of that write carries the same digest. ``stored_files_verify`` re-reads every
such file from storage and names each one that is missing or whose content no longer matches.

Apps declare their files like anchors (in their AppConfig.ready, or here for the core's own):

    register_stored_file("qc.QCResult", file_field="attachment", hash_field="attachment_sha256")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.apps import apps

CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredFileSource:
    model_label: str
    file_field: str
    hash_field: str


@dataclass(frozen=True)
class FileProblem:
    source: str
    object_id: str
    name: str
    kind: str  # missing | changed

    def __str__(self) -> str:
        what = "is missing from storage" if self.kind == "missing" else "does not match its recorded SHA-256"
        return f"{self.source} {self.object_id}: file {self.name} {what}"


_SOURCES: dict[str, StoredFileSource] = {}


def register_stored_file(model_label: str, *, file_field: str, hash_field: str) -> None:
    _SOURCES[model_label.lower()] = StoredFileSource(model_label, file_field, hash_field)


def _digest(field_file) -> str | None:
    storage = field_file.storage
    if not storage.exists(field_file.name):
        return None
    digest = hashlib.sha256()
    with storage.open(field_file.name, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stored_files_verify(*, using: str = "default") -> tuple[int, list[FileProblem]]:
    """(files checked, problems): every registered file that has a recorded hash, re-read and re-hashed."""
    checked, problems = 0, []
    for source in _SOURCES.values():
        try:
            model = apps.get_model(source.model_label)
        except LookupError:
            continue
        rows = (model._base_manager.using(using).exclude(**{source.file_field: ""})
                .exclude(**{source.hash_field: ""}).order_by("pk"))
        for row in rows.iterator(chunk_size=500):
            field_file = getattr(row, source.file_field)
            checked += 1
            actual = _digest(field_file)
            if actual != getattr(row, source.hash_field):
                problems.append(FileProblem(source.model_label, str(row.pk), field_file.name,
                                            "missing" if actual is None else "changed"))
    return checked, problems


register_stored_file("documents.DocumentJob", file_field="output", hash_field="sha256")
