"""The app as a site runs it, started from a test or the soak: gunicorn with production settings (and Celery
workers where needed) as child processes on loopback, against a database and a Redis the caller names."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def production_env(base: dict, *, database_url: str, redis_url: str, data_dir: Path) -> dict[str, str]:
    """``base`` (usually os.environ) with what production settings need, on loopback and without TLS."""
    env = dict(base)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production", DATABASE_URL=database_url, REDIS_URL=redis_url,
        SECRET_KEY=secrets.token_urlsafe(50), CMLIMS_AUDIT_KEY=secrets.token_urlsafe(40),
        SECURE_SSL_REDIRECT="0", ALLOWED_HOSTS="127.0.0.1,localhost", CMLIMS_DATA_DIR=str(data_dir),
        CMLIMS_MEDIA_DIR=str(data_dir / "media"),
        # Every simulated user logs in from 127.0.0.1: the per-address login throttle would count them as one.
        CMLIMS_THROTTLE_LOGIN="10000/min", PYTHONUNBUFFERED="1",
    )
    env.pop("CMLIMS_TEST_CLOCK", None)  # a site's clock: the server's own
    return env


class Processes:
    """Everything a run started, stopped in reverse order at the end (by its own handles only)."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
        self.started.append((name, proc))
        return proc

    def gunicorn(self, *, port: int, env: dict, workers: int = 3, threads: int = 4) -> subprocess.Popen:
        return self.start("gunicorn", [str(BIN / "gunicorn"), "config.wsgi:application", "--bind",
                                       f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
                                       "--timeout", "60",
                                       # longer than a user's pause: gunicorn's 2 s default closes idle
                                       # connections just as a client reuses them (status 0, no response)
                                       "--keep-alive", "30"], env)

    def worker(self, name: str, env: dict) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
                                 "default,labels,reports", "-c", "1", "-n", f"{name}@localhost",
                                 "--without-gossip", "--without-mingle", "-l", "info"], env)

    def stop_all(self) -> None:
        for _name, proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc in reversed(self.started):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def run_checked(args: list[str], env: dict, what: str) -> str:
    """Run a command of the app's (migrate, a dataset); its failure names ``what`` and shows its output."""
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Until the web server answers at all (healthz says 503 until a worker answers its ping)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=15):  # noqa: S310 - loopback URL we built
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def token_obtain(base: str, username: str, password: str) -> str:
    """An API token through the token endpoint (a login: done before any load starts)."""
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(f"{base}/api/v1/auth/token/", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback URL we built
        return json.loads(response.read())["token"]
