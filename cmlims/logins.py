"""Failed logins, lockouts and their clearing in the audit trail (Part 11 §11.300(d), Annex 11 §12).

django-axes counts failures per user name and per client address in the cache and refuses a locked one
(settings: AXES_*). This module records what happened without letting a flood of attempts grow the trail
without bound or queue every other write behind the chain's append lock:

- a failed login is one audit entry per (user name, address) per ``CMLIMS_LOGIN_FAILURE_WINDOW``; the further
  failures of that window are counted in the cache only, and the count is written into the trail with the
  lockout entry and with the pair's first entry of a later window (``earlier_failures``). Attempts refused
  because the user name or address is locked count under the address alone, so a flood of invented user
  names from one address adds one entry per window once it is locked;
- a lockout is one entry per (user name, address) per window;
- clearing a lock (``login_lock_clear``) is an audited change with a reason, by the administrator or a QC
  officer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from axes.backends import AxesStandaloneBackend
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from cmlims import roles
from cmlims.audit import Action, audit_record
from cmlims.exceptions import InvalidInput, PermissionDenied, field_error

_LOCK_OBJECT = "cmlims.login_lock"  # the audit object of a lock (an address has no row of its own)
_WINDOW_KEY_PREFIX = "login-failures"


def client_address(request) -> str:
    """The client's address: REMOTE_ADDR, or behind CMLIMS_PROXY_COUNT trusted proxies the address they saw
    (the N-th from the right of X-Forwarded-For, which a client cannot forge past the proxies)."""
    meta = request.META
    count = settings.CMLIMS_PROXY_COUNT
    forwarded = [a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if count and len(forwarded) >= count:
        return forwarded[-count][:64]
    return meta.get("REMOTE_ADDR", "")[:64]


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every web login. Without a request (the shell, a test client's
    ``login()``) there is no client to lock out, so it passes; axes itself would refuse the call."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


@dataclass(frozen=True)
class _Window:
    start: int  # seconds since the epoch, a multiple of the window's length
    seconds: int

    @classmethod
    def now(cls) -> _Window:
        seconds = max(1, int(settings.CMLIMS_LOGIN_FAILURE_WINDOW.total_seconds()))
        epoch = int(timezone.now().timestamp())
        return cls(start=epoch - epoch % seconds, seconds=seconds)

    def key(self, kind: str, username: str, address: str, *, start: int | None = None) -> str:
        return f"{_WINDOW_KEY_PREFIX}:{kind}:{start if start is not None else self.start}:{address}:{username}"

    def started_at(self) -> str:
        return datetime.fromtimestamp(self.start, tz=UTC).isoformat()


def _count(window: _Window, kind: str, username: str, address: str) -> tuple[bool, int]:
    """Count one event for the key; (first of its window, count so far). Atomic in Redis and in local memory."""
    key = window.key(kind, username, address)
    first = cache.add(key, 1, timeout=2 * window.seconds)
    return first, (1 if first else cache.incr(key))


def _earlier_failures(window: _Window, username: str, address: str) -> int:
    """The failures the previous window counted for the pair (its entry said only that the first happened)."""
    return int(cache.get(window.key("failed", username, address, start=window.start - window.seconds)) or 0)


def _request_facts(request) -> dict:
    return {"remote_addr": client_address(request), "path": getattr(request, "path", "")} if request else {}


def login_failure_record(*, credentials: dict, request=None) -> None:
    """Record a failed login (called by the ``user_login_failed`` receiver): the first of its window for the
    user name and address is an audit entry, the rest only counted (no write, no append lock)."""
    User = get_user_model()
    attempted = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")[:150]
    address = client_address(request) if request is not None else ""
    locked = bool(getattr(request, "axes_locked_out", False))
    window = _Window.now()
    first, count = _count(window, "failed", "" if locked else attempted, address)
    if not first:
        return
    account = User._default_manager.filter(**{User.USERNAME_FIELD: attempted}).only("pk").first() if attempted else None
    changes = {"attempted_username": attempted, "account_exists": account is not None, **_request_facts(request),
               "window_start": window.started_at(),
               "coalesced": "further failures of this user name and address in the window are counted, "
                            "not recorded one by one"}
    if locked:
        changes["refused"] = "user name or address locked after repeated failed logins"
        changes["coalesced"] = "further refused attempts from this address in the window are counted"
    earlier = _earlier_failures(window, "" if locked else attempted, address)
    if earlier:
        changes["earlier_failures"] = earlier
    with transaction.atomic():
        audit_record(actor=None, actor_name="anonymous", action=Action.LOGIN_FAILED,
                     object_type=User._meta.label_lower, object_id=str(account.pk) if account else "",
                     object_repr=attempted, changes=changes)


def login_lockout_record(*, request, username: str | None, ip_address: str | None) -> None:
    """Record a lockout (called by axes' ``user_locked_out`` signal), once per user name and address per
    window, with axes' count of failures. axes repeats the signal for each attempt refused while locked
    (no failure counted on the request then): those are failed-login entries already, not new locks."""
    failures = getattr(request, "axes_failures_since_start", None)  # axes' count for the locked name or address
    if failures is None:
        return
    username = (username or "")[:150]
    address = (ip_address or "")[:64]
    window = _Window.now()
    first, _ = _count(window, "locked", username, address)
    if not first:
        return
    with transaction.atomic():
        audit_record(
            actor=None, actor_name="anonymous", action=Action.LOGIN_FAILED, object_type=_LOCK_OBJECT,
            object_id=username or address, object_repr=username or address,
            changes={"event": "locked_out", "username": username, "remote_addr": address,
                     "path": getattr(request, "path", ""), "failures": failures,
                     "failure_limit": settings.AXES_FAILURE_LIMIT,
                     "locked_for_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds())},
        )


def _may_clear_locks(actor) -> bool:
    return actor.is_active and (actor.is_superuser or roles.has_role(actor, roles.QC_OFFICER))


def login_lock_clear(*, actor, username: str = "", ip_address: str = "", reason: str) -> int:
    """Clear the login lock of a user name and/or a client address before its time runs out; the
    administrator or a QC officer may, with a reason. Returns how many counters were cleared."""
    if not _may_clear_locks(actor):
        raise PermissionDenied("Only the administrator or a QC officer may clear a login lock.")
    username, ip_address = username.strip(), ip_address.strip()
    if not username and not ip_address:
        raise InvalidInput("username or ip_address: one of them is required",
                           fields={"username": ["give a user name, an address or both"]})
    if not reason.strip():
        raise field_error("reason", "a reason is required to clear a login lock")
    cleared = 0
    if username:
        cleared += axes_reset(username=username)
    if ip_address:
        cleared += axes_reset(ip=ip_address)
    with transaction.atomic():
        audit_record(actor=actor, action=Action.CHANGED, object_type=_LOCK_OBJECT,
                     object_id=username or ip_address, object_repr=username or ip_address,
                     changes={"login_lock": ["locked", "cleared"], "username": username,
                              "remote_addr": ip_address, "counters_cleared": cleared},
                     reason=reason.strip())
    return cleared

