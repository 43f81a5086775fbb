"""The IQ/OQ PDF, read back as text."""

from pathlib import Path

import pypdfium2
import pytest
from django.core.management import call_command

from cmlims import roles
from cmlims.audit import chain_head
from cmlims.validation.iqoq import iqoq_render
from cmlims.validation.lock import lock_read
from cmlims.validation.matrix import junit_read, matrix_build
from cmlims.validation.register import register_load

FIXTURE_REGISTER = Path(__file__).with_name("fixture_register.yaml")  # the tiny register these tests read


def _text(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))


@pytest.mark.django_db
def test_iqoq_report_states_environment_lock_migrations_roles_settings_matrix_and_chain_head(sample_run, tmp_path):
    roles.sync_role_permissions()
    matrix = matrix_build(register=register_load(path=FIXTURE_REGISTER), run=junit_read(path=sample_run))
    text = _text(iqoq_render(matrix=matrix, deploy_settings="config.settings.production"))
    head = chain_head()
    assert "cmlims installation / operational qualification" in text
    assert "1. Environment (installation)" in text and "test run commit" in text
    assert f"django {lock_read()['django']} {lock_read()['django']} yes" in text
    assert "3. Migrations applied" in text and "0 pending" in text and "0001_initial" in text
    assert "QC officer" in text and "esign.view_signature" in text
    assert "check --deploy under config.settings.production (throwaway secrets): exit 0" in text
    assert "System check identified no issues" in text
    assert "coverage requirements covered: 2 of 6" in text
    assert "REQ-NONE low yes untested no passing test" in text
    assert f"chain head at this run sequence {head.sequence}, {head.hash}" in text


@pytest.mark.django_db
def test_validation_pack_command_writes_the_pack_and_fails_on_mandatory_gaps(sample_run, tmp_path):
    out = tmp_path / "pack"
    with pytest.raises(Exception, match=r"3 mandatory requirement\(s\) without passing tests"):
        call_command("validation_pack", junit=sample_run, out=out, register=FIXTURE_REGISTER)
    assert {p.name for p in out.iterdir()} == {"traceability.html", "traceability.csv", "reliability.md", "iq-oq.pdf"}
    assert "check --deploy not run" in _text((out / "iq-oq.pdf").read_bytes())
