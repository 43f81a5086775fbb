"""The `make demo` supervisor, for real: web server, worker and beat start, and none outlives it."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.support import worker as worker_support

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_alive(pgid: int, wait: float = 10.0) -> bool:
    """Whether any live (non-zombie) process is left in the group, after up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        alive = False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended while we looked
            state, group = fields[0], int(fields[2])
            if group == pgid and state != "Z":  # a killed orphan stays a zombie until init reaps it
                alive = True
                break
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


class Runner:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.log = tmp_path / "runner.log"
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DATABASE_URL=worker_support.test_database_url(),
            CMLIMS_TEST_RUN_DIR=str(settings.CMLIMS_TEST_RUN_DIR),
            CMLIMS_DATA_DIR=str(tmp_path / "data"),
            CMLIMS_DEMO_ZPL_PORT=str(free_port()),  # the demo printers, beside any other run's
            CMLIMS_DEMO_IPP_PORT=str(free_port()),
        )
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "config.demo_runner", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        pytest.fail(f"runner never printed {text!r}:\n{self.output()[-3000:]}")

    def children(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in re.findall(r"(web|worker|beat|printers) pid (\d+)", self.output())}

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in self.children().values():
            if group_alive(pid, wait=0):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def runner(django_db_setup, tmp_path):
    started = Runner(tmp_path)
    yield started
    started.cleanup()


@pytest.mark.django_db(transaction=True)
def test_demo_runner_serves_and_stops_every_process_on_sigterm(runner):
    runner.wait_for("cmlims demo is running on")
    children = runner.children()
    assert set(children) == {"web", "worker", "beat", "printers"}
    with urllib.request.urlopen(f"http://127.0.0.1:{runner.port}/healthz", timeout=10) as response:
        assert response.status == 200

    runner.proc.send_signal(signal.SIGTERM)

    assert runner.proc.wait(timeout=60) == 0
    assert "cmlims demo stopped (SIGTERM)." in runner.output()
    assert [name for name, pgid in children.items() if group_alive(pgid)] == []


@pytest.mark.django_db(transaction=True)
def test_demo_runner_stops_everything_and_fails_when_a_child_dies(runner):
    runner.wait_for("cmlims demo is running on")
    children = runner.children()

    os.killpg(children["worker"], signal.SIGKILL)

    assert runner.proc.wait(timeout=60) == 1
    assert "worker exited with -9; stopping the others" in runner.output()
    assert [name for name, pgid in children.items() if group_alive(pgid)] == []
