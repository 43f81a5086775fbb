"""`make demo`'s supervisor: the web server, a Celery worker (all three queues), beat and the demo printers.

    python -m config.demo_runner [--host 127.0.0.1] [--port 8000]

Each child runs in its own process group. On Ctrl-C or SIGTERM every child's main process gets
SIGTERM (Celery's warm shutdown lets running tasks finish); then whatever is left of its group,
or all of it after a grace period, gets SIGKILL, so no process outlives the demo. If any child dies on its own,
the others are stopped too and the runner exits non-zero: a demo with a dead worker would look
alive while labels and reports never arrive.

The web server is Django's runserver (threaded, no autoreloader) under the local settings with
DEBUG on, which serves the admin's static files itself: nothing to collect, one process to
supervise, tracebacks on screen. Production uses gunicorn behind a web server that serves
``collectstatic`` output (see README, "Production").
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 20.0


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Child:
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, start_new_session=True)  # noqa: S603
        return self

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def terminate(self) -> None:
        """SIGTERM to the main process only: Celery's warm shutdown then lets its pool finish."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the process group (pool children included)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


def children(host: str, port: int) -> list[Child]:
    python = sys.executable
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["PYTHONUNBUFFERED"] = "1"
    # Separate names per start, so a restarted demo never answers pings for a stale worker.
    worker_name = f"demo-{os.getpid()}@%h"
    return [
        Child("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"], env),
        Child(
            "worker",
            [python, "-m", "celery", "-A", "config", "worker", "-Q", "default,labels,reports",
             "-c", "2", "-n", worker_name, "--without-gossip", "--without-mingle", "-l", "info"],
            env,
        ),
        Child("beat", [python, "-m", "celery", "-A", "config", "beat", "-l", "info"], env),
        # The demo's Zebra and office printer (their records come from cmlims.printing.demo).
        Child("printers", [python, "-m", "cmlims.printing.simulators"], env),
    ]


def stop_all(running: list[Child]) -> None:
    for child in running:
        child.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for child in running:
        if not child.wait(max(0.1, deadline - time.monotonic())):
            print(f"cmlims demo: {child.name} did not stop within {GRACE_SECONDS:.0f}s; killing it", flush=True)
        child.kill_group()  # no orphan survives its main process
        child.wait(5)


def wait_until_healthy(
    url: str, running: list[Child], stop_requested: Callable[[], bool], timeout: float = 90.0
) -> dict | None:
    """Poll /healthz until it reports all up; the last state seen if a child died, a stop came or time ran out."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        if stop_requested() or any(child.poll() is not None for child in running):
            return state
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own local URL
                return json.load(response)
        except urllib.error.HTTPError as exc:  # 503 while the worker is still starting
            state = json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    return state


def banner(base_url: str) -> str:
    from cmlims.demo import DEMO_PASSWORD, DEMO_USERS

    lines = ["", "=" * 72, f"cmlims demo is running on {base_url}/", f"  admin:   {base_url}/admin/",
             f"  API:     {base_url}/api/docs/", f"  health:  {base_url}/healthz", "  logins (password for all: "
             f"{DEMO_PASSWORD}):"]
    lines += [f"    {u.username:<7} {u.first_name} {u.last_name} ({u.role or 'superuser, user management only'})"
              for u in DEMO_USERS]
    lines += ["Stop with Ctrl-C.", "=" * 72, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)

    stopping = {"signal": None}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local")
    print(f"cmlims demo: starting web server, Celery worker, beat and the demo printers ({settings_module})",
          flush=True)
    running = [child.start() for child in children(args.host, args.port)]
    print("cmlims demo: " + ", ".join(f"{child.name} pid {child.proc.pid}" for child in running), flush=True)
    base_url = f"http://{args.host}:{args.port}"
    exit_code = 0
    try:
        state = wait_until_healthy(f"{base_url}/healthz", running, lambda: stopping["signal"] is not None)
        if stopping["signal"] is None:
            if state is not None and state.get("ok"):
                print(banner(base_url), flush=True)
            elif all(child.poll() is None for child in running):
                print(f"cmlims demo started but /healthz is not all up yet: {state}", flush=True)
                print(banner(base_url), flush=True)
        while stopping["signal"] is None:
            dead = [child for child in running if child.poll() is not None]
            if dead:
                for child in dead:
                    print(f"cmlims demo: {child.name} exited with {child.poll()}; stopping the others",
                          file=sys.stderr, flush=True)
                exit_code = 1
                break
            time.sleep(0.5)
    finally:
        stop_all(running)
    if stopping["signal"] is not None:
        print(f"cmlims demo stopped ({signal.Signals(stopping['signal']).name}).", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
