"""PostgreSQL restarted, and crashed, under load: a real server of the test's own, not a simulation.

The app runs as a site runs it (gunicorn with production settings and its own Redis) against a private
PostgreSQL cluster (tests/support/postgres_server.py). While seven API clients allocate vials to shipments
(a multi-row change), create consignees and read lots, the cluster is restarted (``pg_ctl restart -m fast``),
then crashed (``pg_ctl stop -m immediate``: every server process killed; the next start recovers from the WAL)
and kept down for a moment before it starts again. Then:

- every answer is a success or a 503 ``database_unavailable`` with Retry-After, never a 500;
- a request that began after the server was back succeeded;
- every acknowledged write is stored, none half-written (allocations come in whole steps, each row with its
  audit entry, vial statuses agree with the live allocations), and ``verify_audit`` is clean.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import psycopg
import pytest
from django.conf import settings

from tests.support.app_server import ROOT, Processes, production_env, run_checked, token_obtain, wait_http
from tests.support.postgres_server import PostgresServer, binaries_folder
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.postgres

VIALS_PER_ALLOCATION = 2
ALLOCATION_INTERVAL_S = 0.25  # paced, so the vials last the whole run (allocations after the outages too)
CONSIGNEE = {"address_line1": "Hafenstrasse 1", "city": "Hamburg", "country": "DE", "contact_name": "Dr. A. Berg"}
OK = {200, 201}


@dataclass
class Answer:
    kind: str
    started: float
    ended: float
    status: int
    code: str = ""
    retry_after: str | None = None


@dataclass
class Outages:
    """The windows (monotonic start, end) in which the server was restarting, crashed or starting again."""

    windows: list[tuple[float, float]] = field(default_factory=list)
    down_since: float | None = None

    def begin(self) -> None:
        self.down_since = time.monotonic()

    def end(self) -> None:
        self.windows.append((self.down_since, time.monotonic()))
        self.down_since = None

    def overlaps(self, answer: Answer) -> bool:
        return any(answer.started <= end and answer.ended >= start for start, end in self.windows) or (
            self.down_since is not None and answer.ended >= self.down_since)


class Client:
    """One API user on its own thread: every answer recorded, acknowledged writes kept by id."""

    def __init__(self, base: str, token: str, answers: list[Answer], lock: threading.Lock):
        self.base, self.token, self.answers, self.lock = base, token, answers, lock

    def call(self, kind: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method, headers={
            "Authorization": f"Token {self.token}", "Content-Type": "application/json"})
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback URL we built
                status, raw, retry_after = response.status, response.read(), None
        except urllib.error.HTTPError as error:
            status, raw, retry_after = error.code, error.read(), error.headers.get("Retry-After")
        payload = json.loads(raw) if raw.startswith((b"{", b"[")) else {}
        code = payload.get("code", "") if isinstance(payload, dict) else ""
        with self.lock:
            self.answers.append(Answer(kind, started, time.monotonic(), status, code, retry_after))
        return status, payload


def admin_session(base: str, username: str, password: str) -> dict[str, str]:
    """Log in to the admin as a browser does (form with its CSRF token); the cookies as a request header."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", "/admin/login/")
    page = conn.getresponse()
    cookies = dict(c.split(";")[0].split("=", 1) for c in page.headers.get_all("Set-Cookie"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token,
                                   "next": "/admin/"})
    conn.request("POST", "/admin/login/", body=form, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookies['csrftoken']}"})
    answer = conn.getresponse()
    errors = re.findall(r'class="errornote">\s*([^<]+)', answer.read().decode())
    assert answer.status == 302, f"admin login answered {answer.status}: {errors}"
    cookies.update(c.split(";")[0].split("=", 1) for c in answer.headers.get_all("Set-Cookie"))
    conn.close()
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


def admin_get(base: str, path: str, headers: dict[str, str]) -> tuple[int, str, str | None]:
    request = urllib.request.Request(f"{base}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback URL we built
            return response.status, response.read().decode(), None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), error.headers.get("Retry-After")


@pytest.fixture
def private_postgres():
    try:
        binaries_folder()
    except RuntimeError as missing:
        if settings.CMLIMS_REQUIRE_SERVICES:
            pytest.fail(f"PostgreSQL's server binaries are required (CMLIMS_REQUIRE_SERVICES=1): {missing}")
        pytest.skip(str(missing))
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def site(private_postgres, tmp_path):
    """gunicorn (production settings) on the private cluster, its own Redis, the soak's starting data."""
    redis = RedisServer(tmp_path / "redis").start()
    env = production_env(os.environ, database_url=private_postgres.createdb("cmlims"), redis_url=redis.url,
                         data_dir=tmp_path / "data")
    procs = Processes(tmp_path / "logs")
    try:
        run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env, "migrate")
        run_checked([sys.executable, "-m", "tests.reliability.soak.dataset", str(tmp_path / "plan.json")], env,
                    "dataset")
        port = free_port()
        procs.gunicorn(port=port, env=env, workers=2, threads=4)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")
        yield {"base": base, "env": env, "plan": json.loads((tmp_path / "plan.json").read_text()), "procs": procs}
    finally:
        procs.stop_all()
        redis.stop()


def stored(server: PostgresServer, sql: str, *params) -> list[tuple]:
    with psycopg.connect(server.url("cmlims")) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.req("REL-FAULT-DB-RESTART")
def test_postgresql_restarted_and_crashed_under_load_loses_no_acknowledged_write(private_postgres, site):
    plan, base = site["plan"], site["base"]
    answers: list[Answer] = []
    lock = threading.Lock()
    accounts = {name: token_obtain(base, name, plan["password"])
                for name in plan["accounts"]["coordinator"] + plan["accounts"]["reader"][:2]}
    allocated: dict[int, int] = {}  # shipment -> allocations answered 200
    unconfirmed: dict[int, int] = {}  # shipment -> allocations that got no success (may or may not be stored)
    consignees: list[str] = []
    shipments: list[int] = []
    stop = threading.Event()
    budget = plan["vials_available"] // (3 * VIALS_PER_ALLOCATION)  # allocations per coordinator thread

    def coordinator(client: Client) -> None:
        shipment, done, next_at = None, 0, time.monotonic()
        while not stop.is_set() and done < budget:
            if shipment is None:
                status, body = client.call("shipment create", "POST", "/api/v1/shipments/",
                                           {"consignee": plan["consignee"], "product": plan["product"]})
                if status == 201:
                    shipment = body["id"]
                    with lock:
                        shipments.append(shipment)
                continue
            status, _body = client.call("allocation", "POST", f"/api/v1/shipments/{shipment}/allocate/",
                                        {"count": VIALS_PER_ALLOCATION})
            with lock:
                target = allocated if status == 200 else unconfirmed
                target[shipment] = target.get(shipment, 0) + 1
            done += status == 200
            next_at += ALLOCATION_INTERVAL_S
            time.sleep(max(0.0, next_at - time.monotonic()))

    def consignee_writer(client: Client, index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            name = f"Restart {index}-{n}"
            status, _body = client.call("consignee create", "POST", "/api/v1/consignees/", {"name": name, **CONSIGNEE})
            if status == 201:
                with lock:
                    consignees.append(name)
            time.sleep(0.05)

    def reader(client: Client) -> None:
        while not stop.is_set():
            client.call("lot read", "GET", "/api/v1/lots/?page_size=50")
            client.call("lot read", "GET", f"/api/v1/lots/{plan['released_lots'][0]}/")

    clients = [Client(base, token, answers, lock) for token in accounts.values()]
    threads = [threading.Thread(target=coordinator, args=(c,)) for c in clients[:3]]
    threads += [threading.Thread(target=consignee_writer, args=(c, i)) for i, c in enumerate(clients[3:5])]
    threads += [threading.Thread(target=reader, args=(c,)) for c in clients[5:]]
    lab_admin = admin_session(base, plan["accounts"]["analyst"][0], plan["password"])
    assert admin_get(base, "/admin/", lab_admin)[0] == 200
    started_at = stored(private_postgres, "SELECT pg_postmaster_start_time()")[0][0]
    outages = Outages()
    for thread in threads:
        thread.start()
    try:
        time.sleep(2.5)
        outages.begin()
        private_postgres.restart("fast")  # an operator's restart: sessions cut, checkpoint, back up
        outages.end()
        time.sleep(2.5)
        outages.begin()
        private_postgres.ctl("stop", "-m", "immediate")  # a crash: no checkpoint, every backend killed
        down_from = time.monotonic()
        time.sleep(0.5)
        admin_down = admin_get(base, "/admin/", lab_admin)  # lab staff at their start page meanwhile
        time.sleep(1.0)
        down_until = time.monotonic()
        private_postgres.ctl("start")  # recovers from the WAL before it accepts connections
        outages.end()
        time.sleep(3.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    assert stored(private_postgres, "SELECT pg_postmaster_start_time()")[0][0] > started_at

    # Never a 500: in an outage a request is refused with 503 and Retry-After; otherwise it succeeds.
    wrong = [a for a in answers if a.status not in OK and not (
        a.status == 503 and a.code == "database_unavailable" and a.retry_after)]
    assert not wrong, wrong[:10]
    failed_outside = [a for a in answers if a.status not in OK and not outages.overlaps(a)]
    assert not failed_outside, failed_outside[:10]
    while_down = [a for a in answers if a.started >= down_from and a.ended <= down_until]
    assert while_down and all(a.status == 503 for a in while_down), while_down[:10]
    status, page, retry_after = admin_down
    assert (status, retry_after) == (503, "5") and "The database could not be reached" in page, (status, page[:300])
    assert admin_get(base, "/admin/", lab_admin)[0] == 200
    after = [a for a in answers if a.started > outages.windows[-1][1]]
    assert {"allocation", "consignee create", "lot read"} <= {a.kind for a in after if a.status in OK}

    # Nothing acknowledged is lost, nothing half-written.
    names = {row[0] for row in stored(private_postgres, "SELECT name FROM shipping_consignee")}
    assert consignees and set(consignees) <= names, set(consignees) - names
    unaudited = stored(private_postgres, """
        SELECT c.id FROM shipping_consignee c WHERE NOT EXISTS (SELECT 1 FROM cmlims_auditentry a
        WHERE a.object_type = 'shipping.consignee' AND a.action = 'created' AND a.object_id = c.id::text)""")
    assert not unaudited, unaudited
    assert set(shipments) <= {row[0] for row in stored(private_postgres, "SELECT id FROM shipping_shipment")}
    live = dict(stored(private_postgres, "SELECT shipment_id, count(*) FROM shipping_shipmentvial "
                                         "WHERE released_at IS NULL GROUP BY shipment_id"))
    assert sum(allocated.values()) > 0
    for shipment in set(allocated) | set(unconfirmed) | set(live):
        rows = live.get(shipment, 0)
        assert rows % VIALS_PER_ALLOCATION == 0, f"shipment {shipment}: {rows} vials, a partial allocation"
        steps = rows // VIALS_PER_ALLOCATION
        assert allocated.get(shipment, 0) <= steps <= allocated.get(shipment, 0) + unconfirmed.get(shipment, 0), (
            shipment, steps, allocated.get(shipment), unconfirmed.get(shipment))
    vials_allocated = stored(private_postgres, "SELECT count(*) FROM batches_vial WHERE status = 'allocated'")[0][0]
    assert vials_allocated == sum(live.values())
    unaudited = stored(private_postgres, """
        SELECT s.id FROM shipping_shipmentvial s WHERE NOT EXISTS (SELECT 1 FROM cmlims_auditentry a
        WHERE a.object_type = 'shipping.shipmentvial' AND a.object_id = s.id::text)""")
    assert not unaudited, unaudited
    verify = subprocess.run([sys.executable, "manage.py", "verify_audit"], cwd=ROOT,
                            env=site["env"], capture_output=True, text=True, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(f"\n{len(answers)} answers, {sum(a.status == 503 for a in answers)} of them 503 in "
          f"{len(outages.windows)} outages; {len(consignees)} consignees and {sum(allocated.values())} allocations "
          f"acknowledged, all stored")
