"""manage.py demo_users: create (or correct) the demo users and print the logins. Never in production."""

from django.core.management.base import BaseCommand, CommandError

from cmlims.demo import DEMO_PASSWORD, DEMO_USERS, DemoRefused, demo_users_ensure


def logins_table() -> str:
    rows = [f"  {'user':<8} {'name':<20} role"]
    for spec in DEMO_USERS:
        rows.append(f"  {spec.username:<8} {spec.first_name + ' ' + spec.last_name:<20} {spec.role or 'superuser'}")
    rows.append(f"  password for all: {DEMO_PASSWORD}")
    return "\n".join(rows)


class Command(BaseCommand):
    help = "Create the demo users (lab1, lab2, qc1, qc2, ship1, robot, admin); idempotent; refused in production."

    def handle(self, *args, **options):
        try:
            demo_users_ensure()
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("Demo users ready:\n" + logins_table())
