"""Core services: API tokens. (Audit writes live in cmlims.audit; signatures arrive with QC.)"""

from datetime import datetime

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from cmlims.audit import Action, audited_save, audited_update
from cmlims.exceptions import ApplicationError, InvalidInput, PermissionDenied
from cmlims.locks import api_token_lock
from cmlims.models import ApiToken


class LoginFailed(ApplicationError):
    status_code = 401
    code = "not_authenticated"


class LoginLocked(ApplicationError):
    """423 like a signing lock: the user name or the address is locked after repeated failed logins."""

    status_code = 423
    code = "login_locked"


def api_token_issue(*, username: str, password: str, request=None) -> tuple[str, datetime]:
    """Check the credentials and issue a token that expires after CMLIMS_TOKEN_TTL; returns (key, expires)."""
    missing = {name: ["This field is required."] for name, value in
               (("username", username), ("password", password)) if not value}
    if missing:
        raise InvalidInput("; ".join(f"{k}: required" for k in missing), fields=missing)
    # Outside any transaction: a failed attempt is audited (by the user_login_failed signal) and that
    # entry must survive the error raised below, which would roll an enclosing transaction back.
    user = authenticate(request, username=username, password=password)
    if getattr(request, "axes_locked_out", False):  # set by django-axes on this request
        retry = int(settings.AXES_COOLOFF_TIME.total_seconds())
        raise LoginLocked(f"Too many failed logins for this user name or address; try again in {retry} s "
                          "or ask the administrator or a QC officer to clear the lock.", retry_after=retry)
    if user is None or not user.is_active:
        raise LoginFailed("Unable to log in with the user name and password given.")
    raw, digest = ApiToken.new_key()
    expires = timezone.now() + settings.CMLIMS_TOKEN_TTL
    token = ApiToken(user=user, digest=digest, prefix=raw[:8], expires_at=expires)
    with transaction.atomic():
        audited_save(token, actor=user, action=Action.TOKEN_ISSUED)
    return raw, expires


@transaction.atomic
def api_token_revoke(*, token: ApiToken, actor, reason: str = "") -> ApiToken:
    """Revoke a token now. Its owner may revoke it, and so may the superuser (who manages users)."""
    if token.user_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("Only the token's owner or an administrator may revoke it.")
    token = api_token_lock(token)
    if token.revoked_at is not None:
        return token
    return audited_update(token, actor=actor, reason=reason, action=Action.TOKEN_REVOKED, revoked_at=timezone.now())
