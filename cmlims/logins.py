"""Failed logins, lockouts and their clearing in the audit trail (Part 11 §11.300(d), Annex 11 §12).

django-axes counts failures per user name and per client address in the cache and refuses a locked one
(settings: AXES_*). This module records what happened without letting a flood of attempts grow the trail
without bound or queue every other write behind the chain's append lock:

- a failed login is one audit entry per (user name, address) per ``CMLIMS_LOGIN_FAILURE_WINDOW``; the further
  failures of that window are counted in the cache only (under a hash of the pair, never the raw name), and
  the count is written into the trail once: with the pair's first entry of the next window
  (``earlier_failures``) or, when the pair does not fail again, by the sweep after the window closed
  (``login_failure_counts_sweep``, beat every minute, and the first failed-login entry of each window: an
  entry with ``window_failures``). Attempts refused
  because the user name or address is locked count under the address alone, so a flood of invented user
  names from one address adds one entry per window once it is locked;
- a lockout opens a ``LoginLock`` row per locked user name or address and writes one entry naming them;
- its end is an entry too: clearing it early (``login_lock_clear``) is an audited change with a reason, by
  the administrator or a QC officer; running out is written by the sweep (``login_lock_expiries_sweep``, beat
  every minute), dated when the lock ended.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from axes import helpers as axes_helpers
from axes.backends import AxesStandaloneBackend
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from cmlims import roles
from cmlims.audit import Action, audit_record, audited_write
from cmlims.exceptions import InvalidInput, PermissionDenied, field_error
from cmlims.locks import queryset_lock, queryset_lock_skip_held
from cmlims.models import LoginLock

_LOCK_OBJECT = "cmlims.login_lock"  # the audit object of a lock (an address has no row of its own)
_WINDOW_KEY_PREFIX = "login-failures"
_SWEEP_WINDOWS = 2  # closed windows the sweep looks back at (beat may have been down for a while)


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

    def earlier(self, windows: int = 1) -> _Window:
        return _Window(start=self.start - windows * self.seconds, seconds=self.seconds)

    def key(self, kind: str, username: str, address: str) -> str:
        """The cache key of a count: the user name and address hashed, so that whatever a client types makes
        a short key of safe characters (memcached refuses spaces, control characters and keys over 250)."""
        pair = hashlib.sha256(f"{address}\0{username}".encode()).hexdigest()[:40]
        return f"{_WINDOW_KEY_PREFIX}:{kind}:{self.start}:{pair}"

    def pairs_key(self) -> str:
        return f"{_WINDOW_KEY_PREFIX}:pairs:{self.start}"

    def pair_slot_key(self, number: int) -> str:
        return f"{_WINDOW_KEY_PREFIX}:pair:{self.start}:{number}"

    def timeout(self) -> int:
        # Long enough for the sweep, which looks back _SWEEP_WINDOWS closed windows.
        return (_SWEEP_WINDOWS + 1) * self.seconds

    def started_at(self) -> str:
        return datetime.fromtimestamp(self.start, tz=UTC).isoformat()


def failure_count_key(username: str, address: str) -> str:
    """The cache key counting the current window's failed logins of a user name from an address."""
    return _Window.now().key("failed", username, address)


def _add_or_incr(key: str, timeout: int) -> tuple[bool, int]:
    """(created, value): 1 on the first call, then counts up. Atomic in Redis and in local memory."""
    first = cache.add(key, 1, timeout=timeout)
    return first, (1 if first else cache.incr(key))


def _count(window: _Window, kind: str, username: str, address: str) -> tuple[bool, int]:
    """Count one event for the key; (first of its window, count so far). The first failure of a pair in a
    window also enters the pair in the window's list, so that the sweep finds its count when the window closes."""
    first, count = _add_or_incr(window.key(kind, username, address), window.timeout())
    if first and kind == "failed":
        _, number = _add_or_incr(window.pairs_key(), window.timeout())
        cache.set(window.pair_slot_key(number), [username, address], timeout=window.timeout())
    return first, count


def _window_count_claim(window: _Window, username: str, address: str, *, at_least: int) -> int:
    """The failures a closed window counted for the pair, claimed for the one entry that writes them (the
    pair's first entry of a later window, or the sweep, whichever comes first); 0 when below ``at_least``
    or already written."""
    key = window.key("failed", username, address)
    count = int(cache.get(key) or 0)
    if count < at_least or not cache.add(f"{key}:written", 1, timeout=window.timeout()):
        return 0
    return count


def _request_facts(request) -> dict:
    return {"remote_addr": client_address(request), "path": getattr(request, "path", "")} if request else {}


def _failed_login_entry_write(attempted: str, changes: dict) -> None:
    """One ``login_failed`` entry about the attempted user name (the account's id when it exists)."""
    User = get_user_model()
    account = User._default_manager.filter(**{User.USERNAME_FIELD: attempted}).only("pk").first() if attempted else None
    with transaction.atomic():
        audit_record(actor=None, actor_name="anonymous", action=Action.LOGIN_FAILED,
                     object_type=User._meta.label_lower, object_id=str(account.pk) if account else "",
                     object_repr=attempted, changes={"attempted_username": attempted,
                                                     "account_exists": account is not None, **changes})


def login_failure_record(*, credentials: dict, request=None) -> None:
    """Record a failed login (called by the ``user_login_failed`` receiver): the first of its window for the
    user name and address is an audit entry, the rest only counted (no write, no append lock)."""
    User = get_user_model()
    attempted = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")[:150]
    address = client_address(request) if request is not None else ""
    locked = bool(getattr(request, "axes_locked_out", False))
    counted_as = "" if locked else attempted
    window = _Window.now()
    first, _ = _count(window, "failed", counted_as, address)
    if not first:
        return
    changes = {**_request_facts(request), "window_start": window.started_at(),
               "coalesced": "further failures of this user name and address in the window are counted, "
                            "not recorded one by one"}
    if locked:
        changes["refused"] = "user name or address locked after repeated failed logins"
        changes["coalesced"] = "further refused attempts from this address in the window are counted"
    earlier = _window_count_claim(window.earlier(), counted_as, address, at_least=1)
    if earlier:
        changes["earlier_failures"] = earlier
    _failed_login_entry_write(attempted, changes)
    if cache.add(f"{_WINDOW_KEY_PREFIX}:swept:{window.start}", 1, timeout=window.timeout()):
        # The first entry of a window sweeps the closed ones too: where the cache is per process (the demo's
        # local memory) beat's worker cannot see the web's counts.
        login_failure_counts_sweep()


def login_failure_counts_sweep() -> int:
    """Write the count of every closed window whose failures went beyond its first entry and that no later
    entry has carried (the pair did not fail again): one entry per user name and address, oldest window
    first. Run by beat every few minutes; a second run finds the counts claimed and writes nothing.
    Returns the number of entries written."""
    current = _Window.now()
    written = 0
    for back in range(_SWEEP_WINDOWS, 0, -1):
        window = current.earlier(back)
        for number in range(1, int(cache.get(window.pairs_key()) or 0) + 1):
            pair = cache.get(window.pair_slot_key(number))
            if not pair:
                continue
            username, address = pair
            count = _window_count_claim(window, username, address, at_least=2)
            if not count:
                continue
            changes = {"event": "window_closed", "remote_addr": address, "window_start": window.started_at(),
                       "window_failures": count,
                       "coalesced": "the failures of this user name and address in the window, counted after "
                                    "its first entry; written when the window closed"}
            if not username:
                changes["refused"] = "attempts from this address refused while it or the user name was locked"
            try:
                _failed_login_entry_write(username, changes)
            except Exception:
                cache.delete(f"{window.key('failed', username, address)}:written")  # the next sweep tries again
                raise
            written += 1
    return written


def _locked_subjects(username: str, address: str) -> list[tuple[str, str, int]]:
    """(subject, value, failures) of what axes has locked: each of the user name and the address is counted
    on its own (AXES_LOCKOUT_PARAMETERS), so either or both may have reached the limit."""
    axes_cache = axes_helpers.get_cache()
    counted = []
    for subject, value in ((LoginLock.Subject.USERNAME, username), (LoginLock.Subject.IP_ADDRESS, address)):
        if value:
            (key,) = axes_helpers.make_cache_key_list([{subject.value: value}])
            counted.append((subject, value, int(axes_cache.get(key) or 0)))
    locked = [c for c in counted if c[2] >= settings.AXES_FAILURE_LIMIT]
    return locked or counted  # axes said locked: if its counts are gone already, both candidates are named


def _lock_open(subject: str, value: str, failures: int, now: datetime) -> LoginLock | None:
    """The new open lock row of the subject, or None when one is open already (the lock is recorded)."""
    value = value[:150]
    stale = LoginLock.objects.open().filter(subject=subject, value=value, locked_until__lte=now)
    _locks_expire(stale, wait=True)  # ran out before the sweep saw it: its end goes first, then the new lock
    if LoginLock.objects.open().filter(subject=subject, value=value).exists():
        return None
    try:
        with transaction.atomic(), audited_write():  # the lock's entry (login_lockout_record) names the row
            return LoginLock.objects.create(subject=subject, value=value, failures=failures, locked_at=now,
                                            locked_until=now + settings.AXES_COOLOFF_TIME)
    except IntegrityError:  # a concurrent request recorded the same lock a moment ago
        return None


def login_lockout_record(*, request, username: str | None, ip_address: str | None) -> None:
    """Record a lockout (called by axes' ``user_locked_out`` signal): an open ``LoginLock`` row per locked
    user name or address and one entry naming them, with axes' count of failures. axes repeats the signal
    for each attempt refused while locked (no failure counted on the request then): those are failed-login
    entries already, not new locks, and cost no query."""
    failures = getattr(request, "axes_failures_since_start", None)  # axes' count for the locked name or address
    if failures is None:
        return
    raw_username, address = username or "", (ip_address or "")[:64]
    username = raw_username[:150]
    now = timezone.now()
    with transaction.atomic():
        locks = [lock for subject, value, count in _locked_subjects(raw_username, address)
                 if (lock := _lock_open(subject, value, count, now))]
        if not locks:
            return
        audit_record(
            actor=None, actor_name="anonymous", action=Action.LOGIN_FAILED, object_type=_LOCK_OBJECT,
            object_id=username or address, object_repr=username or address,
            changes={"event": "locked_out", "username": username, "remote_addr": address,
                     "path": getattr(request, "path", ""), "failures": failures,
                     "failure_limit": settings.AXES_FAILURE_LIMIT,
                     "locked": [lock.subject for lock in locks], "locks": [lock.pk for lock in locks],
                     "locked_for_seconds": int(settings.AXES_COOLOFF_TIME.total_seconds()),
                     # The lock runs out then (axes' count expires): the sweep writes that end as its own
                     # entry (login_lock_expiries_sweep); an earlier end is a clearing entry.
                     "locked_until": locks[0].locked_until.isoformat()},
        )


def _locks_expire(due, *, wait: bool = False) -> int:
    """End the given open locks as run out, each with its entry (at its own time: the sweep may be late).
    The sweep skips rows another transaction holds; a new lock or a clearing of the same subject ``wait``s
    for it, so that it sees the row ended (and records its own lock) rather than still open."""
    ended = 0
    for lock in (queryset_lock(due) if wait else queryset_lock_skip_held(due)):
        with audited_write():
            LoginLock.objects.filter(pk=lock.pk).update(ended_at=lock.locked_until, end=LoginLock.End.EXPIRED)
        audit_record(actor=None, action=Action.CHANGED, object_type=_LOCK_OBJECT, object_id=lock.value,
                     object_repr=lock.value,
                     changes={"login_lock": ["locked", "expired"], "event": "lock_expired", "lock": lock.pk,
                              lock.subject: lock.value, "locked_at": lock.locked_at.isoformat(),
                              "ended_at": lock.locked_until.isoformat(), "failures": lock.failures})
        ended += 1
    return ended


def login_lock_expiries_sweep() -> int:
    """Write the end of every login lock that ran out (beat every minute, with the failed-login sweep): the
    trail shows both ends of every lock. Concurrent sweeps skip each other's rows. Returns the locks ended."""
    with transaction.atomic():
        return _locks_expire(LoginLock.objects.open().filter(locked_until__lte=timezone.now()))


def may_clear_locks(actor) -> bool:
    return actor.is_active and (actor.is_superuser or roles.has_role(actor, roles.QC_OFFICER))


def login_lock_clear(*, actor, username: str = "", ip_address: str = "", reason: str) -> int:
    """Clear the login lock of a user name and/or a client address before its time runs out; the
    administrator or a QC officer may, with a reason. Returns how many counters were cleared."""
    if not may_clear_locks(actor):
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
    now = timezone.now()
    subjects = models.Q(pk__in=[])
    if username:
        subjects |= models.Q(subject=LoginLock.Subject.USERNAME, value=username[:150])
    if ip_address:
        subjects |= models.Q(subject=LoginLock.Subject.IP_ADDRESS, value=ip_address[:64])
    with transaction.atomic():
        _locks_expire(LoginLock.objects.open().filter(subjects, locked_until__lte=now), wait=True)  # ran out
        ended = [lock.pk for lock in queryset_lock(LoginLock.objects.open().filter(subjects))]
        with audited_write():  # the clearing entry below names the rows it ended
            LoginLock.objects.filter(pk__in=ended).update(ended_at=now, end=LoginLock.End.CLEARED)
        audit_record(actor=actor, action=Action.CHANGED, object_type=_LOCK_OBJECT,
                     object_id=username or ip_address, object_repr=username or ip_address,
                     changes={"login_lock": ["locked", "cleared"], "event": "lock_cleared", "username": username,
                              "remote_addr": ip_address, "counters_cleared": cleared, "locks": ended},
                     reason=reason.strip())
    return cleared

