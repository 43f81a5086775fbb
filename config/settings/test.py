"""Test settings: fast hashing, fixed keys; the database and broker come from the environment.

Without DATABASE_URL the tests use a SQLite file (a real worker process must see the same
database); without REDIS_URL the embedded filesystem broker in a per-run folder.
"""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES, INSTALLED_APPS

SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
AUDIT_HMAC_KEY = os.environ.get("CMLIMS_AUDIT_KEY", "test-audit-hmac-key-0123456789abcdef")
DEBUG = False
CMLIMS_ENVIRONMENT = "test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CMLIMS_REQUIRE_SERVICES = os.environ.get("CMLIMS_REQUIRE_SERVICES") == "1"
CMLIMS_TEST_RUN_DIR = Path(os.environ.setdefault("CMLIMS_TEST_RUN_DIR", tempfile.mkdtemp(prefix="cmlims-test-")))
MEDIA_ROOT = CMLIMS_TEST_RUN_DIR / "media"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so a worker subprocess can open the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(CMLIMS_TEST_RUN_DIR / "test.sqlite3")}

if not os.environ.get("REDIS_URL"):
    _broker = CMLIMS_TEST_RUN_DIR / "broker"
    CELERY_RESULT_BACKEND = f"file://{_broker / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
        "polling_interval": 0.2,  # kombu's default 1 s makes every control.ping round trip slow
    }

# Test-only models that exercise the audit core generically (parent/child, reason rules).
INSTALLED_APPS = [*INSTALLED_APPS, "tests.auditfixture.apps.AuditFixtureConfig"]
# Tests set their clock in UTC; a test that checks the shown zone overrides this.
TIME_ZONE = "UTC"

# A stalled simulated printer is given up on quickly (the timeout and retry paths are what is tested).
CMLIMS_PRINTER_SEND_TIMEOUT = 1.0
CMLIMS_PRINTER_RETRY_BACKOFF = 0.05
