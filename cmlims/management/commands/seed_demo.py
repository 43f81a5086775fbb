"""manage.py seed_demo: load the demo data (demo users + every seeder in config/demo.py). Never in production."""

from django.core.management.base import BaseCommand, CommandError

from cmlims.demo import DemoRefused
from config.demo import seed_all


class Command(BaseCommand):
    help = "Load the demo data into the configured database; idempotent; refused under production settings."

    def handle(self, *args, **options):
        try:
            seed_all(log=self.stdout.write)
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
