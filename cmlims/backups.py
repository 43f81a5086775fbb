"""Backups and restores: the database (PostgreSQL custom-format dump, or a SQLite copy made with SQLite's
online backup API), the uploaded and generated files under MEDIA_ROOT, and a manifest with the SHA-256 of
every file. A restore refuses a backup whose files do not match its manifest, and verifies the restored
audit trail (chain and anchors) before reporting success.

Layout of a backup folder:
    manifest.json            format, time, engine, chain head at backup time, {path: {sha256, size}}
    database.pgdump | database.sqlite3
    media/...                MEDIA_ROOT as it was
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django.utils.module_loading import import_string

from cmlims.audit import chain_head
from cmlims.exceptions import ApplicationError
from cmlims.verification import audit_chain_verify

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
PG_DUMP_FILE = "database.pgdump"
SQLITE_FILE = "database.sqlite3"
MEDIA_DIR = "media"


class BackupError(ApplicationError):
    code = "backup_failed"


@dataclass
class BackupResult:
    path: Path
    manifest: dict


@dataclass
class RestoreResult:
    manifest: dict
    verified: bool  # the restored audit trail passed verify_audit
    verification: str  # what verify_audit said
    media_files: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _engine(config: dict) -> str:
    engine = config["ENGINE"]
    if "postgresql" in engine:
        return "postgresql"
    if "sqlite3" in engine:
        return "sqlite"
    raise BackupError(f"backups support PostgreSQL and SQLite, not {engine}")


def _pg_env(config: dict) -> dict:
    env = dict(os.environ)
    for key, name in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD"),
                      ("NAME", "PGDATABASE")):
        if config.get(key):
            env[name] = str(config[key])
    return env


def _run(command: list[str], env: dict) -> None:
    try:
        # A fixed argument list (no shell); the only variable parts are our own paths and settings.
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    except FileNotFoundError as exc:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL client tools are needed)") from exc
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()[:2000]}")


def _sqlite_copy(source: str | Path, target: str | Path) -> None:
    """SQLite's online backup API: a consistent copy even while the app writes (WAL)."""
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target))
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def default_backup_dir() -> Path:
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return Path(getattr(settings, "CMLIMS_BACKUP_DIR", settings.DATA_DIR / "backups")) / stamp


def backup_create(*, destination: Path | None = None, using: str = "default") -> BackupResult:
    """Write a backup folder (database, media, manifest) and return it."""
    destination = Path(destination) if destination else default_backup_dir()
    if destination.exists() and any(destination.iterdir()):
        raise BackupError(f"{destination} is not empty; choose a new folder")
    destination.mkdir(parents=True, exist_ok=True)
    config = connections[using].settings_dict
    engine = _engine(config)
    head = chain_head()  # read first: the dump, taken after, holds at least this much of the chain

    if engine == "postgresql":
        database_file = PG_DUMP_FILE
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file",
              str(destination / database_file)], _pg_env(config))
    else:
        database_file = SQLITE_FILE
        _sqlite_copy(config["NAME"], destination / database_file)

    media_root = Path(settings.MEDIA_ROOT)
    if media_root.is_dir():
        shutil.copytree(media_root, destination / MEDIA_DIR, symlinks=False)
    else:
        (destination / MEDIA_DIR).mkdir()

    files = {
        path.relative_to(destination).as_posix(): {"sha256": _sha256(path), "size": path.stat().st_size}
        for path in sorted(destination.rglob("*")) if path.is_file()
    }
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "engine": engine,
        "database": database_file,
        "chain_head": {"sequence": head.sequence, "hash": head.hash},
        "files": files,
    }
    (destination / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return BackupResult(destination, manifest)


def backup_check(source: Path) -> dict:
    """The manifest of ``source`` after checking every file against it; raises naming each mismatch."""
    source = Path(source)
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{source} has no {MANIFEST}: not a cmlims backup")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = manifest["files"]
    except (ValueError, KeyError) as exc:
        raise BackupError(f"{manifest_path} is not a valid manifest: {exc}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"backup format {manifest.get('format')} is not supported (expected {FORMAT_VERSION})")
    present = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()} - {MANIFEST}
    problems = [f"missing: {name}" for name in sorted(set(listed) - present)]
    problems += [f"not in the manifest: {name}" for name in sorted(present - set(listed))]
    for name in sorted(set(listed) & present):
        if _sha256(source / name) != listed[name]["sha256"]:
            problems.append(f"SHA-256 mismatch: {name}")
    if manifest.get("database") not in listed:
        problems.append("the manifest names no database file")
    if problems:
        raise BackupError("the backup does not match its manifest; refusing to restore: " + "; ".join(problems[:20]))
    return manifest


def _target_config(database_url: str | None, using: str) -> dict:
    if not database_url:
        return connections[using].settings_dict
    # The project's parser (a settings path), so a restore target gets the options the site's database has.
    return import_string(settings.CMLIMS_DATABASE_URL_PARSER)(database_url)


def _verify_elsewhere(database_url: str, min_head: int) -> tuple[bool, str]:
    """verify_audit in a separate process against ``database_url`` (same settings and key, another database):
    exactly what an operator runs after restoring into a scratch database."""
    command = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "verify_audit", "--min-head", str(min_head)]
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    return result.returncode == 0, (result.stdout + result.stderr).strip()


def _restore_media(source: Path, media_root: Path) -> int:
    """Put the backup's files in place; files already there are moved aside, never deleted."""
    if media_root.exists() and any(media_root.iterdir()):
        aside = media_root.with_name(f"{media_root.name}.before-restore-{timezone.now():%Y%m%dT%H%M%SZ}")
        media_root.rename(aside)
    media_root.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted((source / MEDIA_DIR).rglob("*")):
        if path.is_file():
            target = media_root / path.relative_to(source / MEDIA_DIR)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            count += 1
    return count


def backup_restore(
    *, source: Path, database_url: str | None = None, media_root: Path | None = None, using: str = "default"
) -> RestoreResult:
    """Restore ``source`` into the configured database (or ``database_url``) and MEDIA_ROOT (or ``media_root``),
    then verify the restored audit trail. The manifest is checked before anything is touched."""
    source = Path(source)
    manifest = backup_check(source)
    config = _target_config(database_url, using)
    engine = _engine(config)
    if engine != manifest["engine"]:
        raise BackupError(f"the backup is a {manifest['engine']} database; the target is {engine}")
    if not database_url:
        connections[using].close()
    database_file = source / manifest["database"]
    if engine == "postgresql":
        _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
              "--dbname", str(config["NAME"]), str(database_file)], _pg_env(config))
    else:
        _sqlite_copy(database_file, config["NAME"])
    media_files = _restore_media(source, Path(media_root or settings.MEDIA_ROOT))
    expected = manifest["chain_head"]["sequence"]
    if database_url:
        ok, summary = _verify_elsewhere(database_url, expected)
        return RestoreResult(manifest, ok, summary, media_files)
    report = audit_chain_verify(using=using, min_head=expected)
    return RestoreResult(manifest, report.ok, report.summary(), media_files)
