"""Core reads: API tokens and who a user is (the printed name that appears on signatures)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from cmlims.exceptions import NotFound
from cmlims.models import ApiToken
from cmlims.roles import user_roles


def api_token_list(*, user: AbstractBaseUser | None, include_inactive: bool = False) -> QuerySet[ApiToken]:
    """The user's tokens, newest first; only live ones unless ``include_inactive``. No user (the schema
    generator's fake view), no tokens."""
    if user is None:
        return ApiToken.objects.none()
    tokens = ApiToken.objects.filter(user=user)
    return tokens if include_inactive else tokens.live()


def api_token_get(pk: int) -> ApiToken:
    """One token by id, with its owner (404 when there is none)."""
    token = ApiToken.objects.select_related("user").filter(pk=pk).first()
    if token is None:
        raise NotFound(f"No token with id {pk}.")
    return token


def user_profile(*, user) -> dict:
    """Name and roles of ``user`` as integrations and the UI show them."""
    return {
        "username": user.get_username(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "printed_name": user.get_full_name() or user.get_username(),
        "email": user.email,
        "roles": sorted(user_roles(user)),
        "is_superuser": user.is_superuser,
    }
