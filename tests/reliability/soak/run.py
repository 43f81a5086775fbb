"""`make soak`: a bounded closed-loop load run on loopback, then consistency checks, then a summary.

    python -m tests.reliability.soak.run [--duration 60] [--users 20] [--out reports/soak]

It starts everything itself on 127.0.0.1: a Redis of its own on a free port (broker, cache, throttles), a
fresh database ``<DATABASE_URL's name>_soak`` on the PostgreSQL server of DATABASE_URL (dropped and made
again each run; the server itself is not restarted), gunicorn with production settings, two Celery workers
and locust headless. The users mix lot reads, result entry, allocations, label jobs and signatures
(``locustfile.py``). Then: every label job done, no vial in two shipments, vial counts reconcile with the
answers the users got, every acknowledged result and signature stored, ``verify_audit`` clean.
The summary goes to ``<out>/summary.json`` and ``<out>/summary.md``; the exit code is 1 when a target or
check fails (0 errors, p95 of reads under 300 ms, every check true).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.support.app_server import BIN, ROOT, Processes, production_env, run_checked, token_obtain, wait_http
from tests.support.redis_server import RedisServer, free_port

READ_P95_TARGET_MS = 300
KINDS = ["lot read", "result entry", "allocation", "label job", "signature"]


def database_urls(base: str) -> tuple[str, str]:
    """(the soak database's URL, the server's maintenance database URL) from DATABASE_URL."""
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "cmlims"
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"unexpected database name {name!r} in DATABASE_URL")
    return (urlunsplit(parts._replace(path=f"/{name}_soak")), urlunsplit(parts._replace(path="/postgres")))


def database_fresh(soak_url: str, admin_url: str) -> None:
    import psycopg

    name = urlsplit(soak_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def locust_stats(path: Path) -> dict[str, dict]:
    """Per request name: count, failures, rps, p50/p95/p99 (ms) from locust's --csv stats file."""
    stats = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            stats[row["Name"]] = {
                "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 2),
                "p50_ms": _ms(row["50%"]), "p95_ms": _ms(row["95%"]), "p99_ms": _ms(row["99%"]),
            }
    return stats


def _ms(value: str) -> float | None:
    return None if value in ("", "N/A") else float(value)


def tokens_obtain(base: str, plan: dict) -> dict[str, list[str]]:
    """One API token per account, through the token endpoint, before the load starts."""
    return {persona: [token_obtain(base, name, plan["password"]) for name in names]
            for persona, names in plan["accounts"].items()}


def consistency_check(*, plan: dict, acks: dict[str, list[int]], wait_jobs: float) -> dict[str, dict]:
    """The checks, in this process, on the soak database (django set up from the run's environment)."""
    import django

    django.setup()
    from django.db.models import Count

    from batches.models import Vial, VialStatus
    from batches.shipping.models import ShipmentVial
    from cmlims.documents.models import DocumentJob, JobStatus
    from cmlims.verification import audit_chain_verify
    from qc.models import QCResult

    def ok_count(name: str) -> int:
        return len(acks.get(name, []))

    job_ids = acks.get("label job", [])
    deadline = time.monotonic() + wait_jobs
    jobs = DocumentJob.objects.filter(pk__in=job_ids)
    while jobs.exclude(status__in=[JobStatus.DONE, JobStatus.FAILED]).exists() and time.monotonic() < deadline:
        time.sleep(1)
    by_status = dict(jobs.values_list("status").annotate(n=Count("id")))
    checks: dict[str, dict] = {}
    checks["every job done"] = {
        "ok": bool(job_ids) and by_status.get(JobStatus.DONE, 0) == len(job_ids) == jobs.count(),
        "detail": f"{len(job_ids)} label jobs accepted; by status {by_status}"}

    twice = (ShipmentVial.objects.filter(released_at__isnull=True).values("vial")
             .annotate(n=Count("id")).filter(n__gt=1).count())
    checks["no vial in two shipments"] = {"ok": twice == 0, "detail": f"{twice} vial(s) in more than one shipment"}

    released = Vial.objects.filter(lot__lot_number__in=plan["released_lots"])
    counts = dict(released.values_list("status").annotate(n=Count("id")))
    live = ShipmentVial.objects.filter(released_at__isnull=True).count()
    allocated = counts.get(VialStatus.ALLOCATED, 0)
    checks["vial counts reconcile"] = {
        "ok": (sum(counts.values()) == plan["vials_available"]
               and counts.get(VialStatus.AVAILABLE, 0) + allocated == plan["vials_available"]
               and allocated == live == ok_count("allocation")),
        "detail": (f"{plan['vials_available']} vials at the start; now {counts}; {live} live allocations; "
                   f"{ok_count('allocation')} allocations acknowledged")}

    results = QCResult.objects.filter(lot__lot_number__in=plan["open_lots"], instrument="INS-SOAK")
    approved = results.filter(approval__isnull=False)
    checks["every acknowledged result and signature stored"] = {
        "ok": (set(results.values_list("pk", flat=True)) == set(acks.get("result entry", []))
               and set(approved.values_list("pk", flat=True)) == set(acks.get("signature", []))),
        "detail": (f"{results.count()} results stored, {ok_count('result entry')} acknowledged; "
                   f"{approved.count()} approved, {ok_count('signature')} signatures acknowledged")}

    report = audit_chain_verify()
    checks["verify_audit clean"] = {"ok": report.ok, "detail": f"{report.entries} entries: {report.summary()}"}
    return checks


def summary_markdown(summary: dict) -> str:
    lines = [f"# Soak run: {summary['users']} users, {summary['duration_s']} s (cmlims {summary['commit']})", "",
             f"{summary['requests']} requests, {summary['rps']} per second, {summary['errors']} errors; "
             f"{summary['jobs_finished']} label jobs finished.", "",
             "| kind | requests | errors | rps | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in summary["kinds"].items():
        lines.append(f"| {name} | {row['requests']} | {row['failures']} | {row['rps']} | {row['p50_ms']} | "
                     f"{row['p95_ms']} | {row['p99_ms']} |")
    lines += ["", "| check | result | detail |", "|---|---|---|"]
    for name, check in summary["checks"].items():
        lines.append(f"| {name} | {'pass' if check['ok'] else 'FAIL'} | {check['detail']} |")
    lines += ["", f"Verdict: **{'pass' if summary['passed'] else 'FAIL'}**" +
              ("" if summary["passed"] else f" ({'; '.join(summary['failed'])})"), ""]
    if summary.get("advisories"):
        lines += [f"Targets missed (advisory): {'; '.join(summary['advisories'])}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of load (default 60)")
    parser.add_argument("--users", type=int, default=20, help="concurrent users (the plan's 20 by default)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "soak")
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--latency-advisory", action="store_true",
                        help="report a missed latency target without failing (CI on a shared machine); "
                             "errors and consistency checks still fail")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("locust_*.csv"), out / "acknowledged.json", out / "summary.json", out / "summary.md"]:
        old.unlink(missing_ok=True)
    soak_url, admin_url = database_urls(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cmlims"))
    database_fresh(soak_url, admin_url)
    redis = RedisServer(out / "redis").start()
    port = free_port()
    env = production_env(os.environ, database_url=soak_url, redis_url=redis.url, data_dir=out / "data")
    env.update(SOAK_PLAN=str(out / "plan.json"), SOAK_ACKS=str(out / "acknowledged.json"))
    os.environ.update(env)
    procs = Processes(logs)
    started = time.monotonic()
    try:
        print(run_checked([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env, "migrate"))
        print(run_checked([sys.executable, "-m", "tests.reliability.soak.dataset", str(out / "plan.json")], env,
                          "dataset").strip())
        for i in (1, 2):
            procs.worker(f"soak-{i}", env)
        procs.gunicorn(port=port, env=env, workers=args.web_workers)
        wait_http(f"http://127.0.0.1:{port}/healthz")
        plan = json.loads((out / "plan.json").read_text())
        plan["tokens"] = tokens_obtain(f"http://127.0.0.1:{port}", plan)
        (out / "plan.json").write_text(json.dumps(plan, indent=1))
        for _ in range(args.web_workers * 4):  # every web process past its first (importing) request
            wait_http(f"http://127.0.0.1:{port}/api/v1/lots/")
        locust = subprocess.run(  # noqa: S603
            [str(BIN / "locust"), "-f", str(Path(__file__).with_name("locustfile.py")), "--headless",
             "-u", str(args.users), "-r", str(args.users), "-t", f"{args.duration}s", "--stop-timeout", "10",
             "--host", f"http://127.0.0.1:{port}", "--csv", str(out / "locust"), "--only-summary",
             "--loglevel", "WARNING"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=args.duration + 120,
        )
        (logs / "locust.log").write_text(locust.stdout + locust.stderr)
        stats = locust_stats(out / "locust_stats.csv")
        acks_file = out / "acknowledged.json"
        acks = json.loads(acks_file.read_text()) if acks_file.exists() else {}
        job_ids = acks.get("label job", [])
        checks = consistency_check(plan=plan, acks=acks, wait_jobs=180)
    finally:
        procs.stop_all()
        redis.stop()

    from cmlims.documents.models import DocumentJob, JobStatus

    total = stats.get("Aggregated", {"requests": 0, "failures": 0, "rps": 0})
    kinds = {name: row for name, row in stats.items() if name != "Aggregated"}
    read_p95 = (kinds.get("lot read") or {}).get("p95_ms")
    failures_csv = out / "locust_failures.csv"
    summary = {
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,  # noqa: S607
                                 text=True, check=False).stdout.strip(),
        "users": args.users, "duration_s": args.duration, "requests": total["requests"], "rps": total["rps"],
        "errors": total["failures"], "kinds": kinds,
        "jobs_finished": DocumentJob.objects.filter(pk__in=job_ids, status=JobStatus.DONE).count(),
        "jobs_requested": len(job_ids), "checks": checks,
        "failures": list(csv.DictReader(open(failures_csv))) if failures_csv.exists() else [],  # noqa: SIM115
        "wall_s": round(time.monotonic() - started, 1),
    }
    failed = [f"{n} errors" for n in [total["failures"]] if n] + [
        f"check '{name}' failed" for name, check in checks.items() if not check["ok"]]
    advisories = []
    if read_p95 is None or read_p95 >= READ_P95_TARGET_MS:
        missed = f"read p95 {read_p95} ms (target < {READ_P95_TARGET_MS})"
        (advisories if args.latency_advisory and read_p95 is not None else failed).append(missed)
    missing = [kind for kind in KINDS if not (kinds.get(kind) or {}).get("requests")]
    if missing:
        failed.append(f"no requests of: {', '.join(missing)}")
    summary.update(passed=not failed, failed=failed, advisories=advisories)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "summary.md").write_text(summary_markdown(summary))
    print(summary_markdown(summary))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
