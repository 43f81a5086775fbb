"""Labels sent to a printer: API request with "printer" -> 202 -> the labels job -> the simulator's socket.

The job runs in this process (document_job_run, as the worker would); the printers are real servers on loopback.
"""

import pytest

from batches.models import CMLot, Vial
from cmlims.documents.models import DocumentJob, JobStatus, LabelPrint
from cmlims.documents.services import document_job_run
from cmlims.models import AuditEntry
from cmlims.printing.models import DispatchStatus, PrintDispatch
from cmlims.printing.services import printer_update
from tests.support.builders import make_printer
from tests.support.documents import barcode_fields, parse_gs1_raw, read_pdf_symbols, split_labels, zpl_datamatrix_to_gs1
from tests.support.printers import offline_address


def post_labels(client, lot, **body):
    return client.post(f"/api/v1/lots/{lot.lot_number}/labels/", body, format="json")


def serials(lot, n):
    return list(Vial.objects.filter(lot=lot).order_by("sequence").values_list("serial", flat=True)[:n])


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-4", "FEAT-PRINT-2", "FEAT-LABELS")
def test_vial_labels_reach_the_zebra_and_its_datamatrix_matches_the_lot(chain, packaged_lot, auth_client, zebra):
    printer = make_printer(chain.lab1, address=zebra.address)
    client = auth_client(chain.lab1)
    wanted = serials(packaged_lot, 3)
    response = post_labels(client, packaged_lot, template="vial", kind="quarantine", vials=wanted, printer=printer.pk)
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]
    assert client.get(f"/api/v1/jobs/{job_id}/").json()["print"]["status"] == "queued"
    assert document_job_run(job_id=job_id) == JobStatus.DONE
    lot = CMLot.objects.select_related("product").get(pk=packaged_lot.pk)
    printed = split_labels(b"".join(zebra.printed).decode())
    assert len(printed) == 3
    for label, serial in zip(printed, wanted, strict=True):
        (data,) = barcode_fields(label, "^BX")
        assert parse_gs1_raw(zpl_datamatrix_to_gs1(data)) == [
            ("01", lot.product.gtin), ("17", lot.expiry.strftime("%y%m%d")), ("10", lot.lot_number), ("21", serial)]
    status = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert status["status"] == "done"
    assert status["print"] | {"sent_at": None} == {"printer": printer.pk, "printer_name": printer.name,
                                                   "status": "sent", "labels_confirmed": 3, "error": None,
                                                   "sent_at": None}
    assert sorted(LabelPrint.objects.filter(job_id=job_id).values_list("item_key", flat=True)) == sorted(wanted)
    assert DocumentJob.objects.get(pk=job_id).queue == "labels"
    # A re-run of the finished job prints nothing more.
    assert document_job_run(job_id=job_id) == "skipped"
    assert len(zebra.printed) == 3


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-4", "FEAT-PRINT-2")
def test_paper_out_fails_the_job_with_the_printers_reason_and_issues_nothing(chain, packaged_lot, auth_client, zebra):
    printer = make_printer(chain.lab1, address=zebra.address)
    zebra.paper_out = True
    client = auth_client(chain.lab1)
    job_id = post_labels(client, packaged_lot, template="vial", kind="quarantine", vials=serials(packaged_lot, 2),
                         printer=printer.pk).json()["job"]
    assert document_job_run(job_id=job_id) == JobStatus.FAILED
    status = client.get(f"/api/v1/jobs/{job_id}/").json()
    assert status["status"] == "failed"
    assert "paper out" in status["error"] and printer.name in status["error"]
    assert status["print"]["status"] == "failed" and "paper_out" in status["print"]["error"]
    assert zebra.printed == [] and not LabelPrint.objects.filter(job_id=job_id).exists()


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-4", "FEAT-PRINT-2")
def test_an_offline_printer_fails_the_job_after_its_retries(chain, packaged_lot, auth_client):
    printer = make_printer(chain.lab1, address=offline_address())
    client = auth_client(chain.lab1)
    job_id = post_labels(client, packaged_lot, template="vial", kind="quarantine", vials=serials(packaged_lot, 1),
                         printer=printer.pk).json()["job"]
    assert document_job_run(job_id=job_id) == JobStatus.FAILED
    dispatch = PrintDispatch.objects.get(job_id=job_id)
    assert dispatch.status == DispatchStatus.FAILED and "did not take the job" in dispatch.error
    assert dispatch.labels_confirmed == 0


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-4", "FEAT-PRINT-2", "LBL-ISSUANCE")
def test_a_stall_mid_job_is_retried_and_every_label_printed_once(chain, packaged_lot, auth_client, zebra):
    printer = make_printer(chain.lab1, address=zebra.address)
    zebra.stall(after_bytes=600)  # inside the second or third label
    client = auth_client(chain.lab1)
    wanted = serials(packaged_lot, 4)
    job_id = post_labels(client, packaged_lot, template="vial", kind="quarantine", vials=wanted,
                         printer=printer.pk).json()["job"]
    assert document_job_run(job_id=job_id) == JobStatus.DONE
    assert zebra.stalled.is_set() and zebra.connections == 2
    keys = [dict(parse_gs1_raw(zpl_datamatrix_to_gs1(barcode_fields(label, "^BX")[0])))["21"]
            for label in split_labels(b"".join(zebra.printed).decode())]
    assert keys == wanted
    assert LabelPrint.objects.filter(job_id=job_id).count() == 4


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-4", "FEAT-PRINT-3")
def test_an_a4_sheet_goes_to_the_office_printer_over_ipp(chain, packaged_lot, auth_client, office_printer):
    printer = make_printer(chain.lab1, kind="ipp", address=office_printer.address, width="210", height="297",
                           material="A4 label sheet")
    client = auth_client(chain.lab1)
    wanted = serials(packaged_lot, 2)
    job_id = post_labels(client, packaged_lot, template="vial", kind="quarantine", vials=wanted, layout="a4",
                         printer=printer.pk).json()["job"]
    assert document_job_run(job_id=job_id) == JobStatus.DONE
    ((_, attributes, document),) = office_printer.jobs
    assert attributes["document-format"] == ["application/pdf"]
    assert document == DocumentJob.objects.get(pk=job_id).output.read()
    assert len(read_pdf_symbols(document, tiles=3)) >= 2


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-4")
def test_wrong_stock_wrong_format_and_disabled_printers_are_refused(chain, packaged_lot, auth_client, zebra):
    client = auth_client(chain.lab1)
    carton_stock = make_printer(chain.lab1, address=zebra.address, name="Zebra 100x70", width="100", height="70")
    response = post_labels(client, packaged_lot, template="vial", kind="quarantine", printer=carton_stock.pk)
    assert response.status_code == 409 and response.json()["code"] == "printer_stock_mismatch"
    assert "100 × 70 mm" in response.json()["message"] and "50 × 25 mm" in response.json()["message"]
    vial_stock = make_printer(chain.lab1, address=zebra.address, name="Zebra 50x25")
    response = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="pdf",
                           printer=vial_stock.pk)
    assert response.status_code == 400 and "format" in response.json()["fields"]
    printer_update(printer=vial_stock, actor=chain.lab1, enabled=False)
    response = post_labels(client, packaged_lot, template="vial", kind="quarantine", printer=vial_stock.pk)
    assert response.status_code == 400 and "disabled" in response.json()["fields"]["printer"][0]
    response = post_labels(client, packaged_lot, template="vial", kind="quarantine", printer=99999)
    assert response.status_code == 400 and "printer" in response.json()["fields"]
    assert not DocumentJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-5")
def test_every_download_is_audited_with_who_and_which_file(chain, packaged_lot, auth_client):
    client = auth_client(chain.lab1)
    job_id = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="zpl",
                         vials=serials(packaged_lot, 1)).json()["job"]
    document_job_run(job_id=job_id)
    for _ in range(2):
        response = client.get(f"/api/v1/jobs/{job_id}/download/")
        assert response.status_code == 200
        b"".join(response.streaming_content)
    entries = AuditEntry.objects.filter(object_type="documents.documentjob", object_id=str(job_id),
                                        action="downloaded")
    job = DocumentJob.objects.get(pk=job_id)
    assert [(e.user_id, e.changes["file"][1], e.changes["sha256"][1]) for e in entries] == [
        (chain.lab1.pk, job.output_name, job.sha256)] * 2


@pytest.mark.django_db
@pytest.mark.req("LBL-QUARANTINE")
def test_quarantine_labels_are_refused_for_a_released_lot(chain, released_lot, auth_client):
    response = post_labels(auth_client(chain.lab1), released_lot, template="vial", kind="quarantine", format="pdf")
    assert response.status_code == 409 and response.json()["code"] == "labels_refused"
    assert [c["code"] for c in response.json()["conditions"]] == ["lot_released"]
    assert not DocumentJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.req("LBL-ISSUANCE")
def test_a_packaged_lot_with_no_labels_issued_is_not_balanced(chain, packaged_lot, auth_client):
    client = auth_client(chain.lab1)
    body = client.get(f"/api/v1/lots/{packaged_lot.lot_number}/labels/").json()
    assert (body["vials"], body["labels"], body["balanced"]) == (10, [], False)
    job_id = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="zpl").json()["job"]
    document_job_run(job_id=job_id)
    assert client.get(f"/api/v1/lots/{packaged_lot.lot_number}/labels/").json()["balanced"] is True
