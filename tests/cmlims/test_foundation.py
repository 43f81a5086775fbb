"""Foundation: production settings, demo users and data, the Celery configuration, SQLite options, roles."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery.beat import PersistentScheduler
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

import config.demo
from cmlims import periodic, roles
from cmlims.demo import DEMO_PASSWORD, DEMO_USERS, demo_users_ensure
from cmlims.models import AuditEntry
from config.celery import app
from config.settings.base import database_from_url

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "CMLIMS_", "SECRET_KEY", "REDIS_URL", "DATABASE_URL"))}  # CI sets both
    env.update(CMLIMS_DATA_DIR=str(tmp_path / "data"), **env_extra)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "k7Hq2-production-like-secret-key-9Zp4wX8vLmN3bR6tY1cF5gJ0sD2aQ7eU",
    "CMLIMS_AUDIT_KEY": "a-production-audit-hmac-key-of-48-characters-xyz",
    "ALLOWED_HOSTS": "lims.example.org",
    "DATABASE_URL": "postgres://cmlims@db.example.org:5432/cmlims",
    "REDIS_URL": "redis://redis.example.org:6379/0",
}


# --- production settings ------------------------------------------------------------------------


def test_production_settings_pass_check_deploy_with_no_warnings(tmp_path):
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_extra=PRODUCTION_ENV, tmp_path=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_production_settings_pass_the_security_checks(tmp_path):
    """The deployment security checks alone (check --deploy also runs every app's schema checks)."""
    args = ("check", "--deploy", "--tag", "security", "--fail-level", "WARNING")
    result = run_manage(*args, env_extra=PRODUCTION_ENV, tmp_path=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "CMLIMS_AUDIT_KEY", "REDIS_URL"])
def test_production_settings_refuse_to_start_without_a_secret(tmp_path, missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}

    result = run_manage("check", env_extra=env, tmp_path=tmp_path)

    assert result.returncode != 0
    assert f"{missing} must be set in production" in result.stderr


def test_production_settings_refuse_a_short_audit_key(tmp_path):
    result = run_manage("check", env_extra={**PRODUCTION_ENV, "CMLIMS_AUDIT_KEY": "short"}, tmp_path=tmp_path)

    assert result.returncode != 0
    assert "CMLIMS_AUDIT_KEY must be at least 32 characters" in result.stderr


@pytest.mark.parametrize("command", ["demo_users", "seed_demo"])
@pytest.mark.req("README-DEMO-REFUSAL")
def test_demo_commands_are_refused_under_production_settings(tmp_path, command):
    result = run_manage(command, env_extra=PRODUCTION_ENV, tmp_path=tmp_path)

    assert result.returncode == 1
    assert "refused under production settings" in result.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_local_settings_generate_and_keep_their_secrets(tmp_path):
    """The quick start needs nothing set: keys are generated once into the data folder and reused."""
    env = {"DJANGO_SETTINGS_MODULE": "config.settings.local"}
    code = "from django.conf import settings; print(settings.SECRET_KEY, settings.AUDIT_HMAC_KEY, settings.DEBUG)"

    first = run_manage("shell", "-c", code, env_extra=env, tmp_path=tmp_path)
    second = run_manage("shell", "-c", code, env_extra=env, tmp_path=tmp_path)

    assert first.returncode == 0, first.stderr
    secret, audit_key, debug = first.stdout.split()[-3:]
    assert len(secret) >= 50 and len(audit_key) >= 50 and secret != audit_key
    assert debug == "True"
    assert second.stdout.split()[-3:] == [secret, audit_key, debug]
    assert oct((tmp_path / "data" / "secret_key").stat().st_mode & 0o777) == "0o600"


# --- demo users and data --------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_users_have_their_roles_names_and_the_demo_password():
    call_command("demo_users", stdout=open(os.devnull, "w"))  # noqa: SIM115

    users = {u.username: u for u in get_user_model().objects.prefetch_related("groups")}
    for spec in DEMO_USERS:
        user = users[spec.username]
        assert user.check_password(DEMO_PASSWORD)
        assert (user.first_name, user.last_name) == (spec.first_name, spec.last_name)
        assert user.get_full_name() == f"{spec.first_name} {spec.last_name}"
        assert [g.name for g in user.groups.all()] == ([spec.role] if spec.role else [])
        assert user.is_superuser == (spec.role is None)
    assert {u.username for u in users.values() if roles.has_role(u, roles.LAB_STAFF)} == {"lab1", "lab2"}
    assert {u.username for u in users.values() if roles.has_role(u, roles.QC_OFFICER)} == {"qc1", "qc2"}
    assert roles.has_role(users["ship1"], roles.SHIPPING_COORDINATOR)
    assert roles.has_role(users["robot"], roles.INTEGRATION)
    assert not users["robot"].is_staff  # API only
    assert roles.user_roles(users["admin"]) == set()  # the superuser takes no GMP action


@pytest.mark.django_db
def test_demo_users_are_idempotent_and_repair_drift():
    demo_users_ensure()
    entries = AuditEntry.objects.count()
    demo_users_ensure()
    assert AuditEntry.objects.count() == entries  # nothing changed, nothing audited

    qc1 = get_user_model().objects.get(username="qc1")
    qc1.set_password("something-else-entirely")
    qc1.last_name = "Changed"
    qc1.save()
    qc1.groups.add(Group.objects.get(name=roles.SHIPPING_COORDINATOR))

    demo_users_ensure()

    qc1.refresh_from_db()
    assert qc1.check_password(DEMO_PASSWORD)
    assert qc1.last_name == "Raman"
    assert list(qc1.groups.values_list("name", flat=True)) == [roles.QC_OFFICER]


@pytest.mark.django_db(transaction=True)
def test_seed_demo_is_idempotent():
    """Every seeder in config/demo.py: a second run adds no audit entry (so it changed nothing)."""
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    entries = AuditEntry.objects.count()

    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115

    assert AuditEntry.objects.count() == entries
    assert set(get_user_model().objects.values_list("username", flat=True)) >= {u.username for u in DEMO_USERS}


class SeederFailed(Exception):
    pass


def failing_seeder(users) -> None:
    """A seeder that breaks after its first write: nothing of the whole seed may remain."""
    get_user_model().objects.create_user(username="half-written", password="x" * 12)
    raise SeederFailed("broken on purpose")


@pytest.mark.django_db(transaction=True)
def test_seed_demo_is_all_or_nothing(monkeypatch):
    monkeypatch.setattr(config.demo, "SEEDERS", [*config.demo.SEEDERS, f"{__name__}.failing_seeder"])
    entries = AuditEntry.objects.count()

    with pytest.raises(SeederFailed):
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115

    assert not get_user_model().objects.exists()
    assert AuditEntry.objects.count() == entries


def test_every_configured_seeder_is_importable():
    from django.utils.module_loading import import_string

    for path in config.demo.SEEDERS:
        assert callable(import_string(path)), path


# --- Celery ---------------------------------------------------------------------------------------


def test_celery_is_json_only_late_acking_and_time_limited():
    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit
    assert conf.worker_prefetch_multiplier == 1  # with late acks: a crash loses no prefetched task
    assert conf.enable_utc is True and conf.timezone == "UTC"


def test_celery_has_the_three_queues_with_default_as_default():
    assert {q.name for q in app.conf.task_queues} == {"default", "labels", "reports"}
    assert app.conf.task_default_queue == "default"


def test_beat_schedule_is_collected_from_the_periodic_registry(tmp_path):
    app.finalize()  # before the tasks modules are imported, as can happen in a real process
    app.loader.import_default_modules()  # what beat does at start: autodiscovered tasks register periodics
    schedule = app.conf.beat_schedule
    assert dict(schedule) == periodic.beat_schedule()
    assert {"documents-sweep", "audit-checkpoint"} <= set(schedule)

    # The scheduler beat builds from that configuration holds every registered entry.
    scheduler = PersistentScheduler(app=app, schedule_filename=str(tmp_path / "beat-schedule"), lazy=False)
    try:
        assert set(periodic.beat_schedule()) <= set(scheduler.schedule)
    finally:
        scheduler.close()
    queues = {q.name for q in app.conf.task_queues}
    for name, entry in schedule.items():
        assert entry["task"] in app.tasks, f"{name}: {entry['task']} is not a registered task"
        assert entry["options"]["queue"] in queues, name
        assert entry["schedule"] > 0, name


def test_embedded_broker_is_used_without_redis_url(settings):
    if os.environ.get("REDIS_URL"):
        assert os.environ["REDIS_URL"] == settings.CELERY_BROKER_URL
    else:
        assert settings.CELERY_BROKER_URL.startswith("filesystem://")
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            assert Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]).is_dir(), key


# --- database and roles ---------------------------------------------------------------------------


def test_sqlite_urls_get_wal_busy_timeout_and_immediate_transactions():
    config = database_from_url("sqlite:////tmp/x.sqlite3")
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert "busy_timeout=30000" in config["OPTIONS"]["init_command"]
    assert "transaction_mode" not in database_from_url("postgres://u@h:5432/d").get("OPTIONS", {})


@pytest.mark.django_db
def test_the_connected_database_runs_in_utc_and_sqlite_in_wal_mode(settings):
    assert settings.USE_TZ is True and settings.TIME_ZONE == "UTC"
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
        else:
            cursor.execute("SHOW TIME ZONE")
            assert cursor.fetchone()[0] == "UTC"


@pytest.mark.django_db
@pytest.mark.req("P11-11.10d")
def test_role_groups_exist_after_migrate():
    assert set(Group.objects.filter(name__in=roles.ROLES).values_list("name", flat=True)) == set(roles.ROLES)
