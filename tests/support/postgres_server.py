"""A PostgreSQL cluster of the test's own on a free loopback port: a database server a fault test may restart
or crash (never the shared one on 5432, which other runs use).

The cluster is made by ``initdb`` from the machine's PostgreSQL binaries. PostgreSQL refuses to run as root, so
as root the commands run as the ``postgres`` account (``runuser``) in a folder that account owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.redis_server import free_port

OWNER = "postgres"


def binaries_folder() -> Path:
    """Where initdb and pg_ctl are: Debian's /usr/lib/postgresql/<major>/bin (newest major), else on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")


class PostgresServer:
    """``start()``, ``restart(mode)`` and ``stop()`` of a private cluster; ``url(name)`` for a database in it."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.bin = binaries_folder()
        self.as_root = os.geteuid() == 0
        # Not under pytest's tmp_path: that folder is root's alone, and the server runs as another account.
        self.folder = Path(tempfile.mkdtemp(prefix="cmlims-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        if self.as_root:
            shutil.chown(self.folder, user=OWNER, group=OWNER)

    def url(self, name: str) -> str:
        return f"postgres://{OWNER}@127.0.0.1:{self.port}/{name}"

    def run(self, tool: str, *args: str, timeout: float = 120) -> str:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", OWNER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                               f"\n{self.log_tail()}")
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> PostgresServer:
        # fsync off: durability across an operating-system crash is not what the tests restart; a server crash
        # (`restart("immediate")`) still replays the WAL from the page cache, as it would on a real site.
        self.run("initdb", "-D", str(self.data), "-U", OWNER, "--auth=trust", "--encoding=UTF8", "--no-sync")
        settings = {"listen_addresses": "'127.0.0.1'", "port": str(self.port), "fsync": "off",
                    "unix_socket_directories": f"'{self.folder}'", "max_connections": "60"}
        with open(self.data / "postgresql.conf", "a") as conf:  # initdb -c is PostgreSQL 16+
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        self.ctl("start")
        return self

    def ctl(self, action: str, *extra: str) -> None:
        self.run("pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", *extra)

    def restart(self, mode: str = "fast") -> None:
        """``fast``: what an operator's restart does (sessions cut, a checkpoint, back up); ``immediate``: a
        crash (every process killed at once; the next start recovers from the WAL)."""
        self.ctl("restart", "-m", mode)

    def createdb(self, name: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self.ctl("stop", "-m", "immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # the folder goes anyway
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],  # noqa: S603
                                  capture_output=True, check=False)
            if done.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the private PostgreSQL on port {self.port} is not ready\n{self.log_tail()}")
