"""Settings shared by every environment; everything site-specific comes from the environment.

Environment variables (see README, "Configuration"):
DATABASE_URL, REDIS_URL, SECRET_KEY, CMLIMS_AUDIT_KEY, DEBUG, ALLOWED_HOSTS,
CMLIMS_DATA_DIR, CMLIMS_TOKEN_TTL_HOURS, CMLIMS_SITE_PREFIX, TIME_ZONE.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("CMLIMS_DATA_DIR", BASE_DIR / "data"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
# The audit chain's HMAC key never lives in the database: a copied database cannot re-sign a forged chain.
AUDIT_HMAC_KEY = os.environ.get("CMLIMS_AUDIT_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "cmlims.admin_site.CmlimsAdminConfig",  # django.contrib.admin with the cmlims start page
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before cmlims: its failed-login receiver runs first, so ours sees whether the attempt locked or was locked.
    "axes",
    "cmlims.apps.CmlimsConfig",
    "cmlims.esign.apps.EsignConfig",
    "cmlims.investigations.apps.InvestigationsConfig",
    "cmlims.documents.apps.DocumentsConfig",
    "cmlims.printing.apps.PrintingConfig",
    "batches.apps.BatchesConfig",
    "batches.shipping.apps.ShippingConfig",
    "qc.apps.QcConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "cmlims.middleware.RequestIdMiddleware",
    "cmlims.middleware.RefuseOversizeBodyMiddleware",
    "cmlims.middleware.RefuseNulMiddleware",
    "cmlims.middleware.ApiJsonErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "cmlims.middleware.SessionIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cmlims.middleware.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out admin login into the lockout answer
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")))
    # A persistent connection the server dropped (a PostgreSQL restart) is replaced at the next request,
    # not reported as that request's error (tests/reliability/test_faults.py).
    config["CONN_HEALTH_CHECKS"] = True
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # A web server and a worker write at once: WAL, a busy timeout and IMMEDIATE transactions
        # avoid "database is locked" (Django 5.1+ understands both options).
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; "
                "PRAGMA foreign_keys=ON;"
            ),
        }
    return config


DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'cmlims.sqlite3'}"
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# The zone times are shown in (the admin names it beside every time); storage stays UTC (USE_TZ).
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True  # every stored time is UTC
FORMAT_MODULE_PATH = ["config.formats"]

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("CMLIMS_MEDIA_DIR", DATA_DIR / "media"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 20 * 1024 * 1024
CMLIMS_MAX_UPLOAD_BYTES = int(os.environ.get("CMLIMS_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024)))

LOGIN_URL = "admin:login"

# --- caches, login lockout, throttles ---------------------------------------------------------------
# One cache shared by every web process (Redis when REDIS_URL is set): login lockouts, throttle counters and
# the coalescing of failed-login audit entries must be the same in every process. Local memory otherwise
# (the demo and tests on SQLite: one process).
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": os.environ["REDIS_URL"], "KEY_PREFIX": "cmlims"}}
    # Sessions read from Redis, written to both: an admin request then reads no session row (issue 14), and a
    # Redis flush or restart loses no session (the next request reads the row back into the cache). Only with
    # a cache every web process shares: a per-process cache would keep a session another process ended.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "cmlims"}}
    # axes warns that local memory is per process: true, and fine for one process (the demo, tests on SQLite).
    # Production requires REDIS_URL, so the warning is never silenced there.
    SILENCED_SYSTEM_CHECKS = ["axes.W001"]
AUTHENTICATION_BACKENDS = [
    "cmlims.logins.LockoutBackend",  # axes: refuses a locked-out user name or address before the password
    # Django's ModelBackend, reading the session's user with its roles in one query (sessions saved under
    # ModelBackend's path log in again once).
    "cmlims.api.authentication.RoleLoadingBackend",
]
# django-axes: after AXES_FAILURE_LIMIT failed logins a user name, and separately a client address, is locked
# for AXES_COOLOFF_TIME (admin login and POST /api/v1/auth/token/). Counts live in the cache, not in rows of
# their own: the audit trail is the record (cmlims.logins), and nothing is deleted when a lock is cleared.
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = int(os.environ.get("CMLIMS_LOGIN_MAX_FAILURES", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CMLIMS_LOGIN_LOCK_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, not the pair
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lock ends on time even while someone keeps trying
AXES_HTTP_RESPONSE_CODE = 423  # as a signing lock (README "API conventions")
AXES_CLIENT_IP_CALLABLE = "cmlims.logins.client_address"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # its admin shows the database handler's tables, which the cache handler leaves empty
# Behind N trusted proxies the client is the N-th address from the right of X-Forwarded-For (0: REMOTE_ADDR).
CMLIMS_PROXY_COUNT = int(os.environ.get("CMLIMS_PROXY_COUNT", "0"))
# Failed logins: one audit entry per user name and address per window (the count is kept in the cache and
# written with the pair's next entry, or by the beat sweep once the window closed), so a flood neither grows
# the trail without bound nor takes the append lock.
CMLIMS_LOGIN_FAILURE_WINDOW = timedelta(minutes=float(os.environ.get("CMLIMS_LOGIN_FAILURE_WINDOW_MINUTES", "15")))

# --- cmlims ---------------------------------------------------------------------------------------
# Which settings module is in force; demo users and data are refused unless it is "local" or "test".
CMLIMS_ENVIRONMENT = "production"
# /healthz: seconds to wait for a worker's ping reply when none comes (a live worker answers at once).
CMLIMS_HEALTH_PING_TIMEOUT = float(os.environ.get("CMLIMS_HEALTH_PING_TIMEOUT", "1"))
CMLIMS_TOKEN_TTL = timedelta(hours=float(os.environ.get("CMLIMS_TOKEN_TTL_HOURS", "8")))
# Admin sessions end after this long without a request (Annex 11 §12: an unattended screen is locked out),
# and in any case 8 hours after the login (the cookie's age).
CMLIMS_SESSION_IDLE = timedelta(minutes=float(os.environ.get("CMLIMS_SESSION_IDLE_MINUTES", "30")))
SESSION_COOKIE_AGE = 8 * 3600
CMLIMS_SITE_PREFIX = os.environ.get("CMLIMS_SITE_PREFIX", "CM")
CMLIMS_MANUFACTURER = os.environ.get("CMLIMS_MANUFACTURER", "cmlims demo manufacturing site")
# The admin's header reads "cmlims · <site name>".
CMLIMS_SITE_NAME = os.environ.get("CMLIMS_SITE_NAME", CMLIMS_MANUFACTURER)
# Printers (cmlims.printing): seconds to connect, to send one label and read its ~HS answer; retries after the
# first connection (a retry resumes after the last label the printer confirmed) and the backoff before each.
CMLIMS_PRINTER_CONNECT_TIMEOUT = float(os.environ.get("CMLIMS_PRINTER_CONNECT_TIMEOUT", "5"))
CMLIMS_PRINTER_SEND_TIMEOUT = float(os.environ.get("CMLIMS_PRINTER_SEND_TIMEOUT", "10"))
CMLIMS_PRINTER_RETRIES = int(os.environ.get("CMLIMS_PRINTER_RETRIES", "2"))
CMLIMS_PRINTER_RETRY_BACKOFF = float(os.environ.get("CMLIMS_PRINTER_RETRY_BACKOFF", "0.5"))
CMLIMS_SIGNING_MAX_FAILURES = 5
# A step entered more than this long after it happened is a late entry: it needs a reason and is marked.
CMLIMS_LATE_ENTRY_HOURS = float(os.environ.get("CMLIMS_LATE_ENTRY_HOURS", "24"))
CMLIMS_SIGNING_LOCK = timedelta(minutes=15)
# SSCC (00) on shipping labels: extension digit + GS1 company prefix + serial reference + check digit.
CMLIMS_GS1_COMPANY_PREFIX = os.environ.get("CMLIMS_GS1_COMPANY_PREFIX", "9506000")
CMLIMS_SSCC_EXTENSION_DIGIT = os.environ.get("CMLIMS_SSCC_EXTENSION_DIGIT", "0")
# What the core is handed by the project that composes it (cmlims imports nothing from config):
# the parser of database URLs (restore --database-url) and the demo data loader (manage.py seed_demo).
CMLIMS_DATABASE_URL_PARSER = "config.settings.base.database_from_url"
CMLIMS_DEMO_SEED = "config.demo.seed_all"

# --- REST framework -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes unauthenticated requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cmlims.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "cmlims.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "cmlims.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "cmlims.api.schema.CmlimsAutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["cmlims.api.renderers.OrjsonRenderer"],  # DRF's bytes, by orjson (B1)
    # Scopes used by cmlims.api.throttling: the token endpoint per client address, signatures and uploads
    # per user (every signing or upload operation reads its body through request_parse, which applies them).
    "DEFAULT_THROTTLE_RATES": {
        "login": os.environ.get("CMLIMS_THROTTLE_LOGIN", "20/min"),
        "signature": os.environ.get("CMLIMS_THROTTLE_SIGNATURE", "30/min"),
        "upload": os.environ.get("CMLIMS_THROTTLE_UPLOAD", "30/min"),
    },
    "DEFAULT_PARSER_CLASSES": [
        "cmlims.api.parsing.JSONParser",  # DRF's, refusing nesting deeper than MAX_JSON_DEPTH (400, not 500)
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "cmlims API",
    "DESCRIPTION": "Lot tracking for stem-cell conditioned medium: manufacturing, QC, sign-off, labels, shipping.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from the drf-spectacular-sidecar package (static files), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Request bodies as components of their own: a file is binary there (a URL only in responses), and what
    # the request side states (patterns, lengths) is not mixed into response bodies.
    "COMPONENT_SPLIT_REQUEST": True,
    # The lot pipeline's status targets: one enum for the transition input and the allowed transitions.
    "ENUM_NAME_OVERRIDES": {"LotStatusTargetEnum": "batches.lifecycle.LOT_STATUS_TARGETS",
                            "LotLabelKindEnum": [("quarantine", "quarantine"), ("final", "final")],
                            # one enum per choice set the response bodies share (a status, a kind, a phase
                            # of several records), named by its record rather than by a hash
                            "ShipmentStatusEnum": "batches.shipping.models.ShipmentStatus",
                            "LotStatusEnum": "batches.models.LotStatus",
                            "VialStatusEnum": "batches.models.VialStatus",
                            "CultureStatusEnum": "batches.models.Culture.Status",
                            "DryingPhaseEnum": "batches.models.LyophilisationPhase.Phase",
                            "CellBankKindEnum": "batches.models.CellBank.Kind",
                            "StorageLocationKindEnum": "batches.models.StorageLocation.Kind",
                            "DonorEligibilityEnum": "batches.models.CellSource.Eligibility",
                            "DonorConsentEnum": "batches.models.CellSource.Consent",
                            "ConsigneeKindEnum": "batches.shipping.models.Consignee.Kind",
                            "CustodyKindEnum": "batches.shipping.models.CustodyKind",
                            "InvestigationKindEnum": "cmlims.investigations.models.Kind",
                            "InvestigationPhaseEnum": "cmlims.investigations.models.Phase",
                            "InvestigationStatusEnum": "cmlims.investigations.models.Status",
                            "PrinterKindEnum": "cmlims.printing.models.PrinterKind",
                            "QcResultStatusEnum": "qc.models.ResultStatus",
                            "SpecificationStatusEnum": "qc.models.SpecStatus",
                            "DocumentJobStatusEnum": "cmlims.documents.models.JobStatus"},
}

# --- Celery ---------------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
BROKER_DIR = Path(os.environ.get("CMLIMS_BROKER_DIR", DATA_DIR / "broker"))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # Embedded broker: kombu's filesystem transport needs no server, yet a real worker and beat
    # run against it and answer control.ping (broadcast through the control folder).
    CELERY_BROKER_URL = "filesystem://localhost//"  # a host name, or kombu warns on every connection
    CELERY_RESULT_BACKEND = f"file://{BROKER_DIR / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,  # kombu's default 1 s makes every control.ping round trip slow
    }
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CMLIMS_TASK_SOFT_TIME_LIMIT", "300"))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CMLIMS_TASK_TIME_LIMIT", "360"))
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "labels", "reports")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}  # filled in config/celery.py from each app's periodic tasks

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"expected_refusal": {"()": "cmlims.logs.ExpectedRefusalFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["expected_refusal"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Django's default config gives "django" its own console handler as well as propagating to the root:
    # every 403 was written twice. One handler, the root's.
    "loggers": {"django": {"handlers": [], "level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": True}},
}
