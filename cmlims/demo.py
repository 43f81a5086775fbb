"""Demo users: lab1, lab2, qc1, qc2, ship1, robot and admin, all with the password ``cmlims-demo``.

Demo data only. ``demo_allowed()`` refuses production settings, so the well-known password can
never be set on a real site. Printed names appear on signatures, hence real first and last names.
"""

from typing import TYPE_CHECKING, NamedTuple

from django.conf import settings
from django.db import transaction

from cmlims import roles

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

# No model imports at module level: demo_runner prints DEMO_USERS without setting Django up.

DEMO_PASSWORD = "cmlims-demo"


class DemoUser(NamedTuple):
    username: str
    first_name: str
    last_name: str
    role: str | None  # None: the superuser, who takes no GMP action


DEMO_USERS = (
    DemoUser("lab1", "Amara", "Okafor", roles.LAB_STAFF),
    DemoUser("lab2", "Jonas", "Lindqvist", roles.LAB_STAFF),
    DemoUser("qc1", "Priya", "Raman", roles.QC_OFFICER),
    DemoUser("qc2", "Tomás", "Herrera", roles.QC_OFFICER),
    DemoUser("ship1", "Mei", "Tanaka", roles.SHIPPING_COORDINATOR),
    DemoUser("robot", "Instrument", "Gateway", roles.INTEGRATION),
    DemoUser("admin", "Helen", "Brandt", None),
)


class DemoRefused(RuntimeError):
    pass


def demo_allowed() -> None:
    """Raise DemoRefused under production settings: demo users and data never reach a real site."""
    if getattr(settings, "CMLIMS_ENVIRONMENT", "production") == "production":
        raise DemoRefused(
            "demo data and demo users are refused under production settings "
            f"(DJANGO_SETTINGS_MODULE={settings.SETTINGS_MODULE})"
        )


def demo_users_ensure() -> dict[str, "AbstractUser"]:
    """Create or correct the demo users; idempotent (a second run changes nothing, so audits nothing)."""
    demo_allowed()  # before touching the database at all
    with transaction.atomic():
        return _demo_users_ensure()


def _demo_users_ensure() -> dict[str, "AbstractUser"]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    roles.sync_role_permissions()
    User = get_user_model()
    groups = {group.name: group for group in Group.objects.filter(name__in=roles.ROLES)}
    users: dict[str, AbstractUser] = {}
    for spec in DEMO_USERS:
        user = User.objects.filter(username=spec.username).first() or User(username=spec.username)
        wanted = {
            "first_name": spec.first_name,
            "last_name": spec.last_name,
            "email": f"{spec.username}@demo.cmlims.invalid",
            "is_active": True,
            "is_staff": spec.role != roles.INTEGRATION,  # the robot uses the API only
            "is_superuser": spec.role is None,
        }
        changed = user._state.adding
        for field, value in wanted.items():
            if getattr(user, field) != value:
                setattr(user, field, value)
                changed = True
        if not user.check_password(DEMO_PASSWORD):
            user.set_password(DEMO_PASSWORD)
            changed = True
        if changed:
            user.save()  # users are audited by cmlims.signals
        want_groups = {groups[spec.role].pk} if spec.role else set()
        have_groups = set(user.groups.filter(name__in=roles.ROLES).values_list("pk", flat=True))
        if have_groups - want_groups:
            user.groups.remove(*(have_groups - want_groups))
        if want_groups - have_groups:
            user.groups.add(*(want_groups - have_groups))
        users[spec.username] = user
    return users
