"""python manage.py restore --from DIR: check the manifest, restore database and media, verify the audit trail."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cmlims.backups import BackupError, backup_check, backup_restore


class Command(BaseCommand):
    help = "Restore a backup made by `manage.py backup` (refuses one that does not match its manifest)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", type=Path, required=True, help="backup folder")
        parser.add_argument("--database-url", help="restore into this database instead of the configured one")
        parser.add_argument("--media-root", type=Path, help="restore files here instead of MEDIA_ROOT")
        parser.add_argument("--noinput", "--no-input", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, source: Path, database_url=None, media_root=None, noinput=False, **options):
        try:
            manifest = backup_check(source)
        except BackupError as exc:
            raise CommandError(exc.message) from exc
        target = database_url or "the configured database"
        if not noinput and sys.stdin.isatty():
            answer = input(f"Replace {target} and the media files with the backup of {manifest['created_at']}? "
                           "Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Restore cancelled.")
        try:
            result = backup_restore(source=source, database_url=database_url, media_root=media_root)
        except BackupError as exc:
            raise CommandError(exc.message) from exc
        if not result.verified:
            raise CommandError(f"Restored, but the audit trail does NOT verify: {result.verification}")
        self.stdout.write(self.style.SUCCESS(
            f"Restored {manifest['engine']} database and {result.media_files} file(s) from {source}."
        ))
        self.stdout.write(result.verification)
