"""Quick start and demo: runs on a fresh checkout with nothing set.

The secret key and the audit HMAC key are generated once and kept in the data folder, so
restarting the demo keeps sessions and the audit chain verifiable. Never used in production.
"""

import os
import secrets

from .base import *  # noqa: F403
from .base import DATA_DIR, env_bool


def _kept_secret(filename: str) -> str:
    path = DATA_DIR / filename
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


CMLIMS_ENVIRONMENT = "local"
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY") or _kept_secret("secret_key")
AUDIT_HMAC_KEY = os.environ.get("CMLIMS_AUDIT_KEY") or _kept_secret("audit_key")
