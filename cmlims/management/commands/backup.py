"""python manage.py backup [--to DIR]: database + media files + manifest with SHA-256s (make backup)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cmlims.backups import BackupError, backup_create


class Command(BaseCommand):
    help = "Back up the database (pg_dump custom format, or a SQLite copy), MEDIA_ROOT and a manifest."

    def add_arguments(self, parser):
        parser.add_argument("--to", dest="destination", type=Path, help="new folder (default data/backups/<UTC time>)")
        parser.add_argument("--database", default="default", help="database alias")

    def handle(self, *args, destination=None, database="default", **options):
        try:
            result = backup_create(destination=destination, using=database)
        except BackupError as exc:
            raise CommandError(exc.message) from exc
        manifest = result.manifest
        head = manifest["chain_head"]
        self.stdout.write(self.style.SUCCESS(
            f"Backup written to {result.path}: {manifest['engine']} database, {len(manifest['files']) - 1} "
            f"other file(s), audit chain head #{head['sequence']}."
        ))
        self.stdout.write(f"Restore with: make restore FROM={result.path}")
