"""Execution leases of document jobs: at most one execution of a job runs its side effects at a time.

A broker may hand one job's message to two executions at once: Redis redelivers an unacknowledged message
after its visibility timeout while the first execution still runs, the sweep re-sends a job whose heartbeat
looked stale, a message is published twice. Rendering twice only wastes time, but printing twice issues
labels twice. So an execution must hold the job's lease before it starts and while it prints and completes:

- the lease names its owner (``Executor``: host, process id and start time, the Celery task id and try);
- the owner renews it while it works (``LeaseKeeper``, a heartbeat thread in the worker);
- another execution takes it over only when the owner is gone: its lease expired (it stopped renewing), or it
  is on this host and its process no longer exists (a pool process SIGKILLed: the broker redelivers at once,
  and the new execution need not wait out the lease), or it is an earlier try of the same task (a retry);
- otherwise the other execution stands down (``leased``) and changes nothing.

Host names must be unique per machine or container (the Docker and Kubernetes defaults are): the process
check reads ``/proc`` of the host it runs on.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

logger = logging.getLogger(__name__)

_FIELDS = ("host", "pid", "start", "task", "try", "token")


def lease_duration() -> timedelta:
    """How long a lease lasts without renewal (``CMLIMS_DOCUMENT_LEASE``, default 2 minutes)."""
    return getattr(settings, "CMLIMS_DOCUMENT_LEASE", timedelta(minutes=2))


def _process_start(pid: int | str) -> str:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), "" when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19] if len(fields) > 19 else ""


def _process_state(pid: int) -> str | None:
    """'alive', 'dead', or None when this system cannot tell (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return "dead"
    except (OSError, IndexError):
        return None
    return "dead" if fields and fields[0] in ("Z", "X") else "alive"  # a zombie is killed, only not yet reaped


@dataclass(frozen=True)
class Executor:
    """One execution of a job: where it runs and which delivery it is."""

    host: str
    pid: int
    start: str
    task: str = ""
    attempt: int = 0
    token: str = ""

    @classmethod
    def current(cls, *, task: str = "", attempt: int = 0) -> Executor:
        """This process, for the delivery ``task`` (the Celery task id) and its try number ``attempt``."""
        pid = os.getpid()
        return cls(host=socket.gethostname(), pid=pid, start=_process_start("self"), task=task or "",
                   attempt=attempt, token=secrets.token_hex(8))

    @property
    def owner(self) -> str:
        """As stored in ``DocumentJob.lease_owner``: readable in the admin, parsed back by ``parse``."""
        values = (self.host, self.pid, self.start, self.task, self.attempt, self.token)
        return " ".join(f"{name}={value}" for name, value in zip(_FIELDS, values, strict=True))

    @classmethod
    def parse(cls, owner: str) -> Executor | None:
        parts = dict(part.split("=", 1) for part in owner.split() if "=" in part)
        try:
            return cls(host=parts["host"], pid=int(parts["pid"]), start=parts.get("start", ""),
                       task=parts.get("task", ""), attempt=int(parts.get("try", 0)), token=parts.get("token", ""))
        except (KeyError, ValueError):
            return None

    def gone(self) -> bool:
        """True only when it is certain this execution no longer runs: its process on this host is dead (or
        its pid now belongs to a later process). On another host nothing is certain: the lease's expiry
        decides there."""
        if self.host != socket.gethostname():
            return False
        state = _process_state(self.pid)
        if state == "dead":
            return True
        if state is None:
            return False
        return bool(self.start) and _process_start(self.pid) not in ("", self.start)

    def supersedes(self, holder: Executor) -> bool:
        """A later try of the same task: the earlier try ended (it raised for a retry) before this one began."""
        return bool(self.task) and self.task == holder.task and self.attempt > holder.attempt


def take_over_reason(*, holder_owner: str, expires_at, claimant: Executor, now) -> str | None:
    """Why ``claimant`` may take the lease held by ``holder_owner`` (None: it may not)."""
    if not holder_owner:
        return "free"
    if expires_at is None or expires_at <= now:
        return "expired"
    holder = Executor.parse(holder_owner)
    if holder is None:
        return "unreadable owner"
    if holder.token and holder.token == claimant.token:
        return "own"
    if claimant.supersedes(holder):
        return "retry"
    if holder.gone():
        return "owner gone"
    return None


class LeaseKeeper:
    """Renews the job's lease from a thread of its own while the execution works; ``lost`` once it could not.

    A thread, because rendering or a printer's socket can hold the execution longer than a lease without a
    progress callback. It uses its own database connection (Django's are per thread) and closes it."""

    def __init__(self, job_id: int, executor: Executor, renew) -> None:
        self.job_id = job_id
        self.executor = executor
        self._renew = renew
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-job-{job_id}", daemon=True)

    @property
    def interval(self) -> float:
        return max(0.2, lease_duration().total_seconds() / 3)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    if not self._renew(self.job_id, self.executor, now=timezone.now()):
                        self.lost.set()
                        logger.warning("document job %s: lease lost by %s", self.job_id, self.executor.owner)
                        return
                except DatabaseError as exc:  # the database away for a moment: try again at the next beat
                    logger.warning("document job %s: lease not renewed: %s", self.job_id, exc)
        finally:
            connection.close()
