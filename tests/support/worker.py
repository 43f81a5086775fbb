"""A real Celery worker process for tests, against the test database and the configured broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from config.celery import app
from tests.support.clock import clock_env_for_child

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created, for a child process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


class WorkerProcess:
    def __init__(self, name: str = "test", queues: str = "default,labels,reports", concurrency: int = 2,
                 env: dict[str, str] | None = None):
        self.name = name
        self.env = env or {}  # e.g. REDIS_URL of a broker the test starts itself (tests/support/redis_server.py)
        self.queues = queues
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(settings.CMLIMS_TEST_RUN_DIR) / f"worker-{name}.log"

    @property
    def hostname(self) -> str:
        return f"{self.name}-{os.getpid()}@localhost"

    def start(self, wait: float = 120.0) -> WorkerProcess:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=test_database_url(),
            CMLIMS_TEST_RUN_DIR=str(settings.CMLIMS_TEST_RUN_DIR),
            PYTHONUNBUFFERED="1",
            **clock_env_for_child(),
        )
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "tests.support.celery_worker", "-A", "config", "worker", "-Q", self.queues,
             "-c", str(self.concurrency), "-n", self.hostname, "--without-gossip", "--without-mingle",
             "-l", "info"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.is_alive():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"worker did not answer ping within {wait}s:\n{self.log_tail()}")

    def is_alive(self) -> bool:
        # 2 s: a loaded CI machine (2 cores, a worker starting) answers slower than the 1 s default.
        replies = app.control.ping(destination=[self.hostname], timeout=2.0) or []
        return any(self.hostname in reply for reply in replies)

    def pool_pids(self) -> list[int]:
        """The prefork pool's child processes (the ones running tasks), read from /proc."""
        if not self.proc:
            return []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children) at once."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def purge_broker() -> None:
    """Drop messages a previous run left in the test broker."""
    with app.connection_for_write() as conn:
        for queue in ("default", "labels", "reports"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001,S110 - a queue that does not exist yet has nothing to purge
                pass
