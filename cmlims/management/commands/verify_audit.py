"""python manage.py verify_audit: recompute the audit chain, check gaps and anchors; non-zero exit if broken."""

from django.core.management.base import BaseCommand, CommandError

from cmlims.verification import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail: HMAC chain, gap-free sequence and every stored anchor."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="database alias to verify")

    def handle(self, *args, database: str = "default", **options):
        report = audit_chain_verify(using=database)
        if report.ok:
            self.stdout.write(self.style.SUCCESS(
                f"Audit trail intact: {report.entries} entries, head #{report.head.sequence} "
                f"{report.head.hash[:16]}…, {report.anchors_checked} anchors checked."
            ))
            return
        for problem in report.problems:
            self.stderr.write(str(problem))
        first = report.first_problem
        raise CommandError(
            f"Audit trail BROKEN at entry #{first.sequence} ({first.kind}): {first.detail}. "
            f"{len(report.problems)} problem(s) in {report.entries} entries."
        )
