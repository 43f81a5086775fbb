"""manage.py seed_demo: load the demo data (demo users + every app's seeder). Never in production.

The loader is the project's (``settings.CMLIMS_DEMO_SEED``, ``config.demo.seed_all``): only the
project knows every app, the core runs what it is given.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from cmlims.demo import DemoRefused


class Command(BaseCommand):
    help = "Load the demo data into the configured database; idempotent; refused under production settings."

    def handle(self, *args, **options):
        try:
            import_string(settings.CMLIMS_DEMO_SEED)(log=self.stdout.write)
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
