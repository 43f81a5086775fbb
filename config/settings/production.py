"""Production: every secret comes from the environment, and check --deploy passes clean."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env_bool


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production")
    return value


DEBUG = False
CMLIMS_ENVIRONMENT = "production"
SECRET_KEY = _required("SECRET_KEY")
AUDIT_HMAC_KEY = _required("CMLIMS_AUDIT_KEY")
# Login lockouts and throttles must be shared by every web process: the cache is Redis (base.py).
_required("REDIS_URL")
SILENCED_SYSTEM_CHECKS: list[str] = []
if len(AUDIT_HMAC_KEY) < 32:
    raise ImproperlyConfigured("CMLIMS_AUDIT_KEY must be at least 32 characters")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = 8 * 3600
