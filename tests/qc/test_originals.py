"""Originals kept and checked (issue 13 item 9): an imported instrument CSV is stored as received, its SHA-256
in the audit entry, the response names the stored file, every result points to it, and verify_audit names the
original once it is changed or removed in storage."""

import csv
import hashlib
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from qc.models import QCResult, ResultImport

pytestmark = pytest.mark.django_db


def export(lot) -> bytes:
    when = (timezone.now() - timedelta(hours=3)).isoformat()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["lot_number", "test", "value", "unit", "analyst", "tested_at", "instrument"])
    writer.writerow([lot.lot_number, "pH (reconstituted)", "7.4", "pH", "lab1", when, "PH-1"])
    writer.writerow([lot.lot_number, "VEGF", "0.8", "ng/mL", "lab1", when, "ELISA-2"])
    return out.getvalue().encode()


@pytest.mark.req("INTEG-ORIGINALS-KEPT", "A11-8.2", "README-REC-STORED-FILES")
def test_imported_csv_is_kept_hashed_named_and_checked(packaged, chain, auth_client, capsys):
    data = export(packaged)
    response = auth_client(chain.lab1).post("/api/v1/qc/results/import/", {
        "file": SimpleUploadedFile("plate-7.csv", data, content_type="text/csv")}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    digest = hashlib.sha256(data).hexdigest()
    assert body["imported"] == 2
    assert body["original"]["file_name"] == "plate-7.csv" and body["original"]["sha256"] == digest
    original = ResultImport.objects.get(pk=body["original"]["id"])
    assert original.original.name == body["original"]["stored_as"]
    with original.original.open("rb") as handle:
        assert handle.read() == data  # kept byte for byte
    assert set(QCResult.objects.values_list("imported_from", flat=True)) == {original.pk}
    created = AuditEntry.objects.get(object_type="qc.resultimport", object_id=str(original.pk), action="created")
    assert created.changes["sha256"][1] == digest
    call_command("verify_audit")
    assert "1 stored files match" in capsys.readouterr().out

    with original.original.storage.open(original.original.name, "wb") as handle:  # edited behind the application
        handle.write(data.replace(b"7.4", b"7.0"))
    report = audit_chain_verify()
    assert [(p.source, p.object_id, p.kind) for p in report.file_problems] == [
        ("qc.ResultImport", str(original.pk), "changed")]
    with pytest.raises(CommandError, match="stored files BROKEN"):
        call_command("verify_audit")
    assert f"qc.ResultImport {original.pk}: file {original.original.name} does not match" in capsys.readouterr().err
    original.original.storage.delete(original.original.name)
    assert [p.kind for p in audit_chain_verify().file_problems] == ["missing"]


@pytest.mark.req("INTEG-ORIGINALS-KEPT")
def test_a_refused_import_keeps_no_original(packaged, chain, auth_client):
    bad = export(packaged).replace(b"lab1", b"nobody")
    response = auth_client(chain.lab1).post("/api/v1/qc/results/import/", {
        "file": SimpleUploadedFile("bad.csv", bad, content_type="text/csv")}, format="multipart")
    assert response.status_code == 400
    assert not ResultImport.objects.exists()
