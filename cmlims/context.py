"""Per-request (or per-task) context the audit trail reads: the request id and the acting user."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str] = ContextVar("cmlims_request_id", default="")
_request: ContextVar[Any] = ContextVar("cmlims_request", default=None)


def current_request_id() -> str:
    return _request_id.get()


def current_request():
    """The request being served, or None outside a request (the admin's read-only fields ask who reads)."""
    return _request.get()


def current_user():
    """The user of the request being served (after authentication), or None outside a request."""
    request = _request.get()
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


@contextmanager
def request_scope(*, request_id: str, request: Any = None) -> Iterator[None]:
    token = _request_id.set(request_id)
    request_token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(request_token)
        _request_id.reset(token)
