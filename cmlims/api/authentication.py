from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import BooleanField, Value
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
    every admin page and API call: one query, not two), and whose permissions, the user's own and its groups',
    are one query (Django's backend reads the two sets by a query each), kept on the user for the request."""

    def get_user(self, user_id):
        user_model = get_user_model()
        try:
            user = roles.first_with_roles(user_model._default_manager.filter(pk=user_id))
        except (ValueError, TypeError):  # a session holding a key of the wrong form finds nobody
            return None
        return user if user is not None and self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            _permissions_load(user_obj)
        return user_obj._perm_cache


def _permissions_load(user) -> None:
    """The user's own and its groups' permissions by ONE query (a UNION ALL, each row saying which side it came
    from), into the three caches ``ModelBackend`` keeps on the user (``_user_perm_cache``, ``_group_perm_cache``,
    ``_perm_cache``), so ``get_user_permissions`` and ``get_group_permissions`` read nothing more. The superuser
    holds every permission, as in ``ModelBackend``."""
    fields = ("content_type__app_label", "codename")
    if user.is_superuser:
        every = {f"{app}.{codename}" for app, codename in Permission.objects.order_by().values_list(*fields)}
        user._user_perm_cache = user._group_perm_cache = user._perm_cache = every
        return
    meta = get_user_model()._meta
    users, groups = (meta.get_field(name).related_query_name() for name in ("user_permissions", "groups"))
    own = Permission.objects.filter(**{users: user}).order_by().values_list(
        *fields, Value(True, output_field=BooleanField()))
    of_groups = Permission.objects.filter(**{f"group__{groups}": user}).order_by().values_list(
        *fields, Value(False, output_field=BooleanField()))
    mine, theirs = set(), set()
    for app, codename, is_own in own.union(of_groups, all=True):
        (mine if is_own else theirs).add(f"{app}.{codename}")
    user._user_perm_cache, user._group_perm_cache, user._perm_cache = mine, theirs, mine | theirs
