"""The installation / operational qualification (IQ/OQ) report: what is installed here and how it is
configured (IQ), and what the test run proved (OQ, the matrix summary), as one PDF through the core's
report layout. Rendered by ``manage.py validation_pack`` in the same ``make validation`` run."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import platform
import secrets
import subprocess  # noqa: S404 - runs Django's own check command with fixed arguments
import sys
from collections.abc import Sequence
from pathlib import Path

import django
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from cmlims.audit import chain_head
from cmlims.documents.reports import Report, Section, render_report
from cmlims.validation.facts import git_commit
from cmlims.validation.lock import LOCK, lock_packages
from cmlims.validation.matrix import Matrix
from cmlims.validation.reliability import Figure

# Settings a reviewer checks in an IQ: security, time, sessions and the GMP-relevant limits.
SETTINGS_SHOWN = (
    "DEBUG", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_AGE", "X_FRAME_OPTIONS", "TIME_ZONE",
    "USE_TZ", "CMLIMS_ENVIRONMENT", "CMLIMS_TOKEN_TTL", "CMLIMS_SIGNING_MAX_FAILURES", "CMLIMS_SIGNING_LOCK",
    "CMLIMS_MAX_UPLOAD_BYTES", "CELERY_TASK_ACKS_LATE", "CELERY_TASK_SOFT_TIME_LIMIT", "CELERY_TASK_TIME_LIMIT",
)


def _environment(matrix: Matrix) -> Section:
    run = matrix.run.properties
    vendor, version = connection.vendor, ".".join(map(str, connection.get_database_version()))
    return Section("1. Environment (installation)", pairs=[
        ("commit (installed)", git_commit()),
        ("host", platform.node()),
        ("operating system", platform.platform()),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("database", f"{vendor} {version}"),
        ("settings module", os.environ.get("DJANGO_SETTINGS_MODULE", "")),
        ("test run commit", run.get("commit", "")),
        ("test run started", run.get("run_started", "")),
        ("test run Python / Django", f"{run.get('python', '')} / {run.get('django', '')}"),
        ("test run database", f"{run.get('database_vendor', '')} {run.get('database_version', '')}"),
    ])


def _dependencies(lock: Path) -> Section:
    packages = lock_packages(path=lock)
    rows = [(p.name, p.locked, p.installed or "NOT INSTALLED", "yes" if p.installed == p.locked else "NO")
            for p in packages]
    mismatched = [i for i, row in enumerate(rows) if row[3] == "NO"]
    return Section(
        "2. Locked dependencies",
        paragraphs=[f"{len(rows)} packages pinned with hashes in {lock.name}; "
                    f"{len(rows) - len(mismatched)} installed at the locked version, {len(mismatched)} not."],
        table_header=("package", "locked", "installed", "matches"), table_rows=rows,
        highlighted_rows=mismatched, column_widths=(0.4, 0.2, 0.25, 0.15),
    )


def _migrations() -> Section:
    executor = MigrationExecutor(connection)
    applied = executor.recorder.applied_migrations()
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    by_app: dict[str, list[str]] = {}
    for app, name in sorted(applied):
        by_app.setdefault(app, []).append(name)
    pending_by_app: dict[str, int] = {}
    for migration, _backwards in pending:
        pending_by_app[migration.app_label] = pending_by_app.get(migration.app_label, 0) + 1
    rows = [(app, str(len(names)), names[-1], str(pending_by_app.get(app, 0))) for app, names in by_app.items()]
    rows += [(app, "0", "", str(count)) for app, count in pending_by_app.items() if app not in by_app]
    return Section(
        "3. Migrations applied",
        paragraphs=[f"{len(applied)} migrations applied, {len(pending)} pending."],
        table_header=("app", "applied", "latest applied", "pending"), table_rows=rows,
        highlighted_rows=[i for i, row in enumerate(rows) if row[3] != "0"], column_widths=(0.2, 0.12, 0.55, 0.13),
    )


def _roles() -> Section:
    rows = []
    for group in Group.objects.prefetch_related("permissions__content_type").order_by("name"):
        perms = sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())
        rows.append((group.name, str(len(perms)), ", ".join(perms) or "(none)"))
    return Section("4. Roles and permissions as configured", table_header=("role", "count", "permissions"),
                   table_rows=rows, column_widths=(0.2, 0.08, 0.72))


def deploy_check(*, settings_module: str) -> tuple[int, str]:
    """``manage.py check --deploy`` under the production settings, with throwaway secrets (never the
    site's): shows what production settings enforce, independent of this machine's environment."""
    env = {
        # what a developer or test session may set for itself is not the production environment
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": settings_module,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "CMLIMS_AUDIT_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "lims.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://lims.example.org",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",  # required; check never connects
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "django", "check", "--deploy"], env=env, capture_output=True, text=True,
        cwd=settings.BASE_DIR, timeout=120,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def _settings(deploy_settings: str | None) -> Section:
    pairs = [(name, repr(getattr(settings, name))) for name in SETTINGS_SHOWN if hasattr(settings, name)]
    if deploy_settings:
        code, output = deploy_check(settings_module=deploy_settings)
        paragraphs = [f"manage.py check --deploy under {deploy_settings} (throwaway secrets): exit {code}",
                      output or "(no output)"]
    else:
        paragraphs = ["check --deploy not run (no production settings module given)"]
    return Section("5. Settings that matter (this installation) and check --deploy", pairs=pairs,
                   paragraphs=paragraphs)


def _matrix_summary(matrix: Matrix) -> Section:
    totals = matrix.run.totals
    gaps = [(row.requirement.id, row.requirement.risk, "yes" if row.requirement.mandatory else "no", row.status,
             row.problem) for row in matrix.rows if not row.covered]
    return Section(
        "6. Operational qualification: traceability matrix summary",
        pairs=[("coverage", matrix.summary_line()),
               ("mandatory without a passing test", str(len(matrix.mandatory_uncovered))),
               ("tests in the run", f"{totals.get('tests', 0)} (failures {totals.get('failures', 0)}, "
                                    f"errors {totals.get('errors', 0)}, skipped {totals.get('skipped', 0)})")],
        paragraphs=["Requirements not covered:" if gaps else "Every requirement is covered by passing tests."],
        table_header=("requirement", "risk", "mandatory", "status", "problem") if gaps else (),
        table_rows=gaps, highlighted_rows=list(range(len(gaps))), column_widths=(0.25, 0.1, 0.12, 0.15, 0.38),
    )


def _reliability(figures: Sequence[Figure]) -> Section:
    rows = [(f.what, f.value, f.source) for f in figures]
    return Section(
        "8. Operational qualification: reliability and security figures of the run",
        paragraphs=["Read from the run's JUnit report, fuzz report and load-run summary; a shaded row has a "
                    "failing test or check, a missed target, or was not in this run."],
        table_header=("what", "figure", "from"), table_rows=rows,
        highlighted_rows=[i for i, f in enumerate(figures) if not f.ok], column_widths=(0.4, 0.3, 0.3),
    )


def iqoq_render(*, matrix: Matrix, deploy_settings: str | None, lock: Path = LOCK,
                figures: Sequence[Figure] = ()) -> bytes:
    """The IQ/OQ PDF of this installation and the given test run (with its reliability figures, if given)."""
    head = chain_head()
    sections = [_environment(matrix), _dependencies(lock), _migrations(), _roles(), _settings(deploy_settings),
                _matrix_summary(matrix),
                Section("7. Audit trail", pairs=[("chain head at this run", f"sequence {head.sequence}, {head.hash}")])]
    if figures:
        sections.append(_reliability(figures))
    now = dt.datetime.now(dt.UTC)
    return render_report(Report(
        title="cmlims installation / operational qualification", subtitle=f"generated {now:%Y-%m-%d %H:%M} UTC",
        document_id=f"IQ/OQ {git_commit()[:12]}", chain_head=head, generated_by=getpass.getuser(),
        generated_at=now, sections=sections,
    ))
