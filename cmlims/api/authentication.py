from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone
from rest_framework import authentication, exceptions

from cmlims import roles
from cmlims.models import ApiToken


class ExpiringTokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``; the key is looked up by its SHA-256 and refused once expired. The token,
    its user and the user's roles are one query."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        token = roles.first_with_roles(
            ApiToken.objects.select_related("user").filter(digest=ApiToken.digest_of(key), revoked_at__isnull=True),
            user_path="user__",
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.expires_at <= timezone.now():
            raise exceptions.AuthenticationFailed("Token has expired; request a new one.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token


class RoleLoadingBackend(ModelBackend):
    """Django's model backend whose session user comes with its roles in the same query (``request.user`` on
    every admin page and API call: one query, not two)."""

    def get_user(self, user_id):
        user_model = get_user_model()
        try:
            user = roles.first_with_roles(user_model._default_manager.filter(pk=user_id))
        except (ValueError, TypeError):  # a session holding a key of the wrong form finds nobody
            return None
        return user if user is not None and self.user_can_authenticate(user) else None
