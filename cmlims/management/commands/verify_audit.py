"""python manage.py verify_audit: recompute the audit chain, check gaps and anchors; non-zero exit if broken."""

from django.core.management.base import BaseCommand, CommandError

from cmlims.verification import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail: HMAC chain, gap-free sequence and every stored anchor."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="database alias to verify")
        parser.add_argument("--min-head", type=int, default=0,
                            help="fail unless the chain reaches this sequence (e.g. the head a backup recorded)")

    def handle(self, *args, database: str = "default", min_head: int = 0, **options):
        report = audit_chain_verify(using=database, min_head=min_head)
        if report.ok:
            self.stdout.write(self.style.SUCCESS(report.summary()))
            return
        for problem in report.problems:
            self.stderr.write(str(problem))
        raise CommandError(report.summary())
