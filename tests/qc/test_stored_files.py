"""verify_audit re-hashes every stored file against the SHA-256 recorded with it (issue 13 item 9): a raw-data
attachment changed or removed in storage is named, with its record, and the check fails."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from cmlims.audit import Action
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from tests.support.builders import enter

pytestmark = pytest.mark.django_db


def with_raw_data(lot, chain, name="elisa.csv", data=b"well,od\nA1,0.42\n"):
    raw = SimpleUploadedFile(name, data, content_type="text/csv")
    return enter(lot, "VEGF", "711", "pg/mL", analyst=chain.lab1, attachment=raw)


@pytest.mark.req("README-REC-STORED-FILES", "ALCOA")
def test_verify_audit_names_a_changed_and_a_missing_attachment(packaged, chain, capsys):
    changed, missing, intact = (with_raw_data(packaged, chain, name=f"raw-{i}.csv", data=f"od {i}\n".encode())
                                for i in range(3))
    created = AuditEntry.objects.get(object_type="qc.qcresult", object_id=str(changed.pk), action=Action.CREATED)
    assert created.changes["attachment_sha256"][1] == changed.attachment_sha256  # the digest is in the trail
    call_command("verify_audit")
    assert "3 stored files match" in capsys.readouterr().out

    storage = changed.attachment.storage
    with storage.open(changed.attachment.name, "wb") as handle:  # edited in storage, behind the application
        handle.write(b"od 9\n")
    storage.delete(missing.attachment.name)

    report = audit_chain_verify()
    assert not report.ok and not report.problems  # the chain itself is intact
    assert [(p.object_id, p.kind) for p in report.file_problems] == [(str(changed.pk), "changed"),
                                                                      (str(missing.pk), "missing")]
    assert report.files_checked == 3 and str(intact.pk) not in {p.object_id for p in report.file_problems}
    with pytest.raises(CommandError, match="stored files BROKEN"):
        call_command("verify_audit")
    err = capsys.readouterr().err
    assert f"qc.QCResult {changed.pk}: file {changed.attachment.name} does not match its recorded SHA-256" in err
    assert f"qc.QCResult {missing.pk}: file {missing.attachment.name} is missing from storage" in err


@pytest.mark.req("README-REC-STORED-FILES")
def test_the_verification_api_lists_file_problems(packaged, chain, auth_client):
    result = with_raw_data(packaged, chain)
    result.attachment.storage.delete(result.attachment.name)
    body = auth_client(chain.qc).get("/api/v1/audit/verification/").json()
    assert body["ok"] is False and body["problems"] == []
    assert body["file_problems"] == [{"model": "qc.QCResult", "id": str(result.pk), "file": result.attachment.name,
                                      "problem": "missing"}]
