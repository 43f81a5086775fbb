"""``manage.py validation_pack``: the traceability matrix (HTML, CSV) and the IQ/OQ PDF from a test run's
JUnit report; prints the coverage line and fails while a mandatory requirement has no passing test."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cmlims.validation.iqoq import iqoq_render
from cmlims.validation.matrix import junit_read, matrix_build, matrix_report_lines, matrix_write
from cmlims.validation.register import DEFAULT_REGISTER, register_load


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--junit", type=Path, default=Path("reports/junit.xml"))
        parser.add_argument("--out", type=Path, default=Path("reports/validation"))
        parser.add_argument("--register", type=Path, default=DEFAULT_REGISTER)
        parser.add_argument("--deploy-settings", help="production settings module to run check --deploy under")

    def handle(self, *args, junit: Path, out: Path, register: Path, deploy_settings: str | None, **options):
        if not junit.exists():
            raise CommandError(f"{junit} does not exist: run `make test` first")
        matrix = matrix_build(register=register_load(path=register), run=junit_read(path=junit))
        html_path, csv_path = matrix_write(matrix=matrix, out_dir=out)
        pdf_path = out / "iq-oq.pdf"
        pdf_path.write_bytes(iqoq_render(matrix=matrix, deploy_settings=deploy_settings))
        self.stdout.write(f"matrix: {html_path} {csv_path}\nIQ/OQ report: {pdf_path}")
        self.stdout.write("\n".join(matrix_report_lines(matrix)))
        if matrix.mandatory_uncovered:
            raise CommandError(f"{len(matrix.mandatory_uncovered)} mandatory requirement(s) without passing tests")
