"""The write guard: audited models refuse writes unless the audit services are making them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class UnauditedWrite(RuntimeError):
    """A write to an audited model that bypassed the audit services."""


_writing: ContextVar[bool] = ContextVar("cmlims_audited_write", default=False)


@contextmanager
def audited_write() -> Iterator[None]:
    """Let the audited models accept writes inside this block (the write API; the anchors' checkpoints)."""
    token = _writing.set(True)
    try:
        yield
    finally:
        _writing.reset(token)


def write_allowed() -> bool:
    return _writing.get()
