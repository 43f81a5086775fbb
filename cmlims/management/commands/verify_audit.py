"""python manage.py verify_audit: recompute the audit chain, check gaps and anchors; non-zero exit if broken."""

from django.core.management.base import BaseCommand, CommandError

from cmlims.replay import records_verify
from cmlims.verification import audit_chain_verify


class Command(BaseCommand):
    help = ("Verify the audit trail: HMAC chain, gap-free sequence, every stored anchor, and every stored file "
            "against its recorded SHA-256.")

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="database alias to verify")
        parser.add_argument("--records", action="store_true",
                            help="also replay the trail and compare it with every audited table's current rows "
                                 "(a direct SQL edit shows as a mismatch naming table, row and field)")
        parser.add_argument("--min-head", type=int, default=0,
                            help="fail unless the chain reaches this sequence (e.g. the head a backup recorded)")

    def handle(self, *args, database: str = "default", min_head: int = 0, records: bool = False, **options):
        report = audit_chain_verify(using=database, min_head=min_head)
        mismatches = []
        if records:
            compared, mismatches = records_verify(using=database)
            for mismatch in mismatches:
                self.stderr.write(str(mismatch))
            if not mismatches:
                self.stdout.write(self.style.SUCCESS(f"Records match the audit trail: {compared} rows replayed."))
        if report.ok and not mismatches:
            self.stdout.write(self.style.SUCCESS(report.summary()))
            return
        for problem in [*report.problems, *report.file_problems]:
            self.stderr.write(str(problem))
        if report.ok:
            raise CommandError(f"Records do NOT match the audit trail: {len(mismatches)} mismatch(es); "
                               f"first: {mismatches[0]}")
        raise CommandError(report.summary())
