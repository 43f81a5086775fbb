"""``manage.py validation_pack``: the traceability matrix (HTML, CSV), the reliability and security figures
(``reliability.md``) and the IQ/OQ PDF from a test run's JUnit report (with the fuzz and load reports of the same
run); prints the coverage line and fails while a mandatory requirement has no passing test."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cmlims.validation.iqoq import iqoq_render
from cmlims.validation.matrix import junit_read, matrix_build, matrix_report_lines, matrix_write
from cmlims.validation.register import DEFAULT_REGISTER, register_load
from cmlims.validation.reliability import figures_markdown, reliability_figures, reports_read


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--junit", type=Path, default=Path("reports/junit.xml"))
        parser.add_argument("--out", type=Path, default=Path("reports/validation"))
        parser.add_argument("--register", type=Path, default=DEFAULT_REGISTER)
        parser.add_argument("--deploy-settings", help="production settings module to run check --deploy under")
        parser.add_argument("--fuzz", type=Path, default=Path("reports/fuzz.json"))
        parser.add_argument("--soak", type=Path, default=Path("reports/soak/summary.json"))

    def handle(self, *args, junit: Path, out: Path, register: Path, deploy_settings: str | None, fuzz: Path,
               soak: Path, **options):
        if not junit.exists():
            raise CommandError(f"{junit} does not exist: run `make test` first")
        run = junit_read(path=junit)
        matrix = matrix_build(register=register_load(path=register), run=run)
        html_path, csv_path = matrix_write(matrix=matrix, out_dir=out)
        figures = reliability_figures(run=run, fuzz=reports_read(fuzz), soak=reports_read(soak))
        figures_path = out / "reliability.md"
        figures_path.write_text(figures_markdown(figures, commit=run.facts.get("commit", "")))
        pdf_path = out / "iq-oq.pdf"
        pdf_path.write_bytes(iqoq_render(matrix=matrix, deploy_settings=deploy_settings, figures=figures))
        self.stdout.write(f"matrix: {html_path} {csv_path}\nreliability figures: {figures_path}\n"
                          f"IQ/OQ report: {pdf_path}")
        self.stdout.write("\n".join(matrix_report_lines(matrix)))
        if matrix.mandatory_uncovered:
            raise CommandError(f"{len(matrix.mandatory_uncovered)} mandatory requirement(s) without passing tests")
