"""Roles: Django groups with model permissions. THE place that says which role may do what.

Each app lists its permissions per role in its AppConfig (``role_permissions``); the groups are
created by a data migration and their permissions are synced after every ``migrate`` from
those lists, so adding a model means adding its codenames in its app's ``apps.py``.
Services check membership with ``require_role``; the admin and the API therefore agree.
"""

from collections.abc import Iterable

from django.apps import apps as global_apps
from django.db.models import F, FilteredRelation, Q

from cmlims.exceptions import PermissionDenied

LAB_STAFF = "Lab staff"
QC_OFFICER = "QC officer"
SHIPPING_COORDINATOR = "Shipping coordinator"
INTEGRATION = "Integration"
ROLES = (LAB_STAFF, QC_OFFICER, SHIPPING_COORDINATOR, INTEGRATION)


SUPERUSER_REFUSED = "superuser_takes_no_gmp_action"


def superuser_gmp_refusal(*, is_superuser: bool, group_names: Iterable[str]) -> str | None:
    """Why a superuser may not sit in these groups (None when fine): a superuser in a GMP role could sign."""
    gmp = sorted(set(group_names) & set(ROLES))
    if is_superuser and gmp:
        return f"a superuser cannot hold a GMP role ({', '.join(gmp)}): the superuser manages users and signs nothing"
    return None


def role_permissions(app_registry=global_apps) -> dict[str, set[str]]:
    """{role: {"app_label.codename", ...}} gathered from every app's ``role_permissions``."""
    merged: dict[str, set[str]] = {role: set() for role in ROLES}
    for config in app_registry.get_app_configs():
        for role, perms in getattr(config, "role_permissions", {}).items():
            merged[role].update(perms)
    return merged


def sync_role_permissions(*, using: str = "default", **kwargs) -> None:
    """Make each role group hold exactly the permissions the apps declare (post_migrate)."""
    from django.contrib.auth.models import Group, Permission

    for role, perms in role_permissions().items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        wanted = []
        for label in sorted(perms):
            app_label, codename = label.split(".", 1)
            perm = Permission.objects.using(using).filter(content_type__app_label=app_label, codename=codename).first()
            if perm is not None:
                wanted.append(perm)
        group.permissions.set(wanted)


def user_roles(user) -> set[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_cmlims_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._cmlims_roles = cached
    return cached


def first_with_roles(queryset, user_path: str = ""):
    """The first object of ``queryset`` (a user, or a row with its user at ``user_path``, e.g. ``"user__"``)
    with that user's role names read in the SAME query, so ``user_roles`` needs none: one row per role by a
    LEFT JOIN to the role groups (a user with no role: one row). Every request reads its user this way."""
    groups = f"{user_path}groups"
    rows = list(queryset.annotate(role_group=FilteredRelation(groups, condition=Q(**{f"{groups}__name__in": ROLES})))
                .annotate(role_name=F("role_group__name")))
    if not rows:
        return None
    first = rows[0]
    user = first
    for attribute in filter(None, user_path.split("__")):
        user = getattr(user, attribute)
    user._cmlims_roles = {row.role_name for row in rows if row.role_name}
    return first


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def may_verify_audit(user) -> bool:
    """Running the audit-chain verification (admin page, API): QC officers, and the superuser, who reads the
    trail as the inspector's host but takes no GMP action. Lab staff read entries, not the chain's state."""
    return bool(getattr(user, "is_superuser", False)) or has_role(user, QC_OFFICER)


def require_role(user, roles: str | Iterable[str], action: str) -> None:
    """Raise 403 unless ``user`` holds one of ``roles``. The superuser takes no GMP action, even from inside a
    GMP group (one put there before the refusal below existed, or by SQL): whoever manages the accounts must
    not also sign with one (DESIGN.md "Roles")."""
    wanted = {roles} if isinstance(roles, str) else set(roles)
    if getattr(user, "is_superuser", False):
        raise PermissionDenied(f"{action} is refused: the superuser manages users and takes no GMP action.",
                               code=SUPERUSER_REFUSED)
    if not has_role(user, *wanted):
        names = " or ".join(sorted(wanted))
        raise PermissionDenied(f"{action} needs the role {names}.", code="permission_denied")
