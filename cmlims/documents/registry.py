"""The registry of document builders: apps register what they can produce; the core runs the jobs.

A builder is a function ``build(ctx: BuildContext) -> BuiltDocument`` that reads the app's records
(it runs in the worker, from ids in ``ctx.params``), hands plain data to the core renderers
(``cmlims.documents.labels`` with the label templates apps register there, ``cmlims.documents.reports``)
and returns the bytes plus the labels issued. ``permission_check(user, params)`` raises ``PermissionDenied``;
the same check guards the request, the job's status and its download.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cmlims.audit import ChainHead
from cmlims.exceptions import InvalidInput

QUEUES = ("default", "labels", "reports")


@dataclass(frozen=True)
class LabelPrintSpec:
    """One issued label, as the builder rendered it (becomes a LabelPrint row when the job is done)."""

    template: str
    template_version: str
    kind: str  # quarantine | final | shipping
    output_format: str  # pdf | zpl
    subject_type: str
    subject_id: str
    item_key: str
    payload: dict[str, Any]
    copies: int = 1
    reprint_reason: str = ""


@dataclass(frozen=True)
class BuiltDocument:
    content: bytes
    filename: str
    content_type: str
    label_prints: Sequence[LabelPrintSpec] = ()


@dataclass(frozen=True)
class BuildContext:
    job_id: int
    kind: str
    params: dict[str, Any]
    requested_by: Any  # the user who asked; documents print their name
    subject_type: str
    subject_id: str
    chain_head: ChainHead  # printed in the document and stored on the job
    progress: Callable[[int], None] = field(repr=False)  # 0-99; the core sets 100 when done


@dataclass(frozen=True)
class DocumentBuilder:
    kind: str
    build: Callable[[BuildContext], BuiltDocument]
    queue: str
    permission_check: Callable[[Any, dict[str, Any]], None]
    title: str


_BUILDERS: dict[str, DocumentBuilder] = {}


def register_builder(
    kind: str,
    builder: Callable[[BuildContext], BuiltDocument],
    queue: str,
    permission_check: Callable[[Any, dict[str, Any]], None],
    *,
    title: str = "",
) -> DocumentBuilder:
    """Register (or re-register, e.g. on autoreload) the builder of one document kind."""
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {QUEUES}, not {queue!r}")
    entry = DocumentBuilder(kind, builder, queue, permission_check, title or kind.replace("_", " "))
    _BUILDERS[kind] = entry
    return entry


def builder_get(kind: str) -> DocumentBuilder:
    try:
        return _BUILDERS[kind]
    except KeyError:
        raise InvalidInput(
            f"Unknown document kind {kind!r}.", fields={"kind": [f"must be one of {', '.join(sorted(_BUILDERS))}"]}
        ) from None


def registered_kinds() -> list[str]:
    return sorted(_BUILDERS)
