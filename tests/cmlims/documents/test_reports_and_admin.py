"""Certificate of analysis, batch record and the lot admin's document actions."""

import datetime as dt
import re

import pytest
from django.test import Client

from batches.models import CMLot
from cmlims.audit import audited_update
from cmlims.documents.models import DocumentJob, JobStatus, LabelPrint
from cmlims.documents.services import document_job_run
from tests.support.builders import PASSWORD
from tests.support.documents import pdf_page_texts


def run(job_id: int) -> DocumentJob:
    document_job_run(job_id=job_id)
    job = DocumentJob.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE, job.error
    return job


def page_numbers_ok(pages: list[str]) -> bool:
    total = len(pages)
    return all(f"Page {i} of {total}" in text for i, text in enumerate(pages, start=1))


@pytest.mark.django_db
@pytest.mark.req("211-188b", "FEAT-BATCH-RECORD", "A11-8.2")
def test_batch_record_lists_steps_people_audit_trail_and_chain_head(chain, packaged_lot, auth_client):
    lot = CMLot.objects.get(pk=packaged_lot.pk)
    audited_update(lot, actor=chain.lab1, reason="typo in filter lot", filter_lot="FLT-10")  # a later change
    assert auth_client(chain.lab1).post(f"/api/v1/lots/{lot.lot_number}/batch-record/").status_code == 403
    response = auth_client(chain.qc).post(f"/api/v1/lots/{lot.lot_number}/batch-record/")
    assert response.status_code == 202
    job = run(response.json()["job"])
    pages = pdf_page_texts(job.output.read())
    text = "\n".join(pages)
    assert page_numbers_ok(pages)
    assert f"Batch record — lot {lot.lot_number}" in text
    for heading in ("Harvests pooled", "Processing", "Freeze-drying", "Packaging", "Investigations", "Signatures",
                    "Audit trail of the lot"):
        assert heading in text
    assert chain.lab1.get_full_name() in text and chain.lab2.get_full_name() in text  # performed / verified
    assert f"Audit chain head: #{job.chain_sequence} {job.chain_hash}" in text.replace("\n", " ")
    assert re.search(r"changed \*", text)  # the filter lot change is marked
    assert "FLT-9 → FLT-10" in text
    assert "LATE ENTRY" in " ".join(text.split())  # the builders enter the lot's steps days after they happened


@pytest.mark.django_db
@pytest.mark.req("FEAT-CERTIFICATES")
def test_coa_is_refused_before_release(chain, packaged_lot, shipper, auth_client):
    response = auth_client(shipper).post(f"/api/v1/lots/{packaged_lot.lot_number}/coa/")
    assert response.status_code == 409 and response.json()["conditions"][0]["code"] == "lot_not_released"
    assert auth_client(chain.lab1).post(f"/api/v1/lots/{packaged_lot.lot_number}/coa/").status_code == 403


@pytest.mark.django_db
@pytest.mark.req("FEAT-CERTIFICATES", "P11-11.10bc", "P11-11.50")
def test_coa_of_a_released_lot(chain, released_lot, shipper, auth_client):
    from qc.selectors import lot_specification, spec_items

    response = auth_client(shipper).post(f"/api/v1/lots/{released_lot.lot_number}/coa/")
    assert response.status_code == 202
    job = run(response.json()["job"])
    pages = pdf_page_texts(job.output.read())
    text = " ".join(pages).replace("\n", " ")
    assert page_numbers_ok(pages)
    spec = lot_specification(released_lot)
    assert f"version {spec.version}" in text and released_lot.lot_number in text
    assert f"{released_lot.expiry:%Y-%m-%d}" in text
    for item in spec_items(spec):
        assert item.test in text and item.method in text
    assert "FAIL" not in text and text.count("pass") >= len(spec_items(spec))
    assert chain.qc.get_full_name() in text and "released" in text
    assert f"#{job.chain_sequence} {job.chain_hash}" in text
    assert "unchanged" in text and "CHANGED AFTER SIGNING" not in text


@pytest.mark.django_db
@pytest.mark.req("A11-8.2", "P11-11.70")
def test_coa_and_batch_record_show_changed_after_signing(chain, released_lot, shipper, auth_client):
    import datetime as dt

    lot = CMLot.objects.get(pk=released_lot.pk)
    audited_update(lot, actor=chain.qc, reason="shelf life corrected per stability data", clean=False,
                   expiry=lot.expiry - dt.timedelta(days=30))
    response = auth_client(shipper).post(f"/api/v1/lots/{released_lot.lot_number}/coa/")
    text = re.sub(r"\s+", " ", " ".join(pdf_page_texts(run(response.json()["job"]).output.read())))
    assert "CHANGED AFTER SIGNING: lot.expiry" in text
    response = auth_client(chain.qc).post(f"/api/v1/lots/{released_lot.lot_number}/batch-record/")
    text = re.sub(r"\s+", " ", " ".join(pdf_page_texts(run(response.json()["job"]).output.read())))
    assert "released" in text and "CHANGED AFTER SIGNING: lot.expiry" in text


def staff_client(user) -> Client:
    """A client logged in to the admin as ``user`` (made staff)."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
@pytest.mark.req("RULE-7", via="browser")
def test_admin_actions_print_unlabelled_vials_and_show_reconciliation(chain, packaged_lot):
    client = staff_client(chain.lab1)
    url = "/admin/batches/cmlot/"
    response = client.post(url, {"action": "documents_print_quarantine_labels",
                                 "_selected_action": [packaged_lot.pk]}, follow=True)
    assert response.status_code == 200
    job = DocumentJob.objects.get()
    assert job.kind == "lot_labels" and job.params["kind"] == "quarantine" and len(job.params["vials"]) == 10
    assert f"/admin/documents/documentjob/{job.pk}/change/" in response.content.decode()
    run(job.pk)
    page = client.get(f"/admin/documents/documentjob/{job.pk}/change/").content.decode()
    assert 'progress max="100" value="100"' in page and "download" in page
    # read as a person reads it: the document's name, what it is for, what was asked (no raw JSON)
    assert "Lot labels" in page and packaged_lot.lot_number in page and "<dt>kind</dt><dd>quarantine</dd>" in page
    assert "Subject repr" not in page and '"vials": [' not in page and "lot_labels" not in page
    assert client.get(f"/admin/documents/documentjob/{job.pk}/download/").status_code == 200

    # Every vial labelled: the action refuses (a reprint needs a reason), nothing new is queued.
    again = client.post(url, {"action": "documents_print_quarantine_labels", "_selected_action": [packaged_lot.pk]},
                        follow=True)
    assert "reprint through the API" in again.content.decode()
    assert DocumentJob.objects.count() == 1
    shown = client.post(url, {"action": "show_label_reconciliation", "_selected_action": [packaged_lot.pk]},
                        follow=True)
    assert ("vial quarantine labels: 10 issued, 10 used, 0 destroyed, 0 returned, 0 unaccounted for, 0 reprints"
            in shown.content.decode())
    assert LabelPrint.objects.count() == 10


@pytest.mark.django_db
def test_lot_admin_offers_the_batch_record_and_the_certificate_qc_adds(chain, released_lot):
    """The CoA action comes from qc (above batches) through the lot admin's own hook, not a patched registry."""
    client = staff_client(chain.qc)
    url = "/admin/batches/cmlot/"
    page = client.get(url).content.decode()
    for name in ("documents_generate_batch_record", "documents_generate_certificate_of_analysis",
                 "show_label_reconciliation"):
        assert f'value="{name}"' in page
    assert "documents_generate_certificate_of_analysis" not in client.get(url + "?_popup=1").content.decode()
    for name in ("documents_generate_batch_record", "documents_generate_certificate_of_analysis"):
        response = client.post(url, {"action": name, "_selected_action": [released_lot.pk]}, follow=True)
        assert "queued" in response.content.decode()
    assert sorted(DocumentJob.objects.values_list("kind", flat=True)) == ["batch_record", "certificate_of_analysis"]
    assert all(run(job.pk).output for job in DocumentJob.objects.all())


@pytest.mark.django_db
def test_job_page_polls_while_the_job_runs(chain, packaged_lot):
    from batches.documents import lot_labels_request

    chain.lab1.is_staff = True
    chain.lab1.save(update_fields=["is_staff"])
    client = Client()
    client.login(username=chain.lab1.username, password=PASSWORD)
    job = lot_labels_request(lot=packaged_lot, actor=chain.lab1, template="vial",
                             kind="quarantine", output_format="zpl")
    page = client.get(f"/admin/documents/documentjob/{job.pk}/change/").content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page and 'value="0"' in page
    run(job.pk)
    page = client.get(f"/admin/documents/documentjob/{job.pk}/change/").content.decode()
    assert "http-equiv" not in page


@pytest.mark.django_db
@pytest.mark.req("RULE-4", "1271-370", "FEAT-PRINT-5")
def test_admin_prints_final_vial_labels_as_zpl_for_a_zebra(chain, released_lot, make_user):
    from cmlims import roles
    from tests.support.documents import barcode_fields, parse_gs1_raw, split_labels, zpl_datamatrix_to_gs1

    client = staff_client(make_user("ship1", roles.SHIPPING_COORDINATOR))
    response = client.post("/admin/batches/cmlot/", {"action": "documents_print_final_vial_labels_as_zpl",
                                                     "_selected_action": [released_lot.pk]}, follow=True)
    assert response.status_code == 200
    job = DocumentJob.objects.get()
    assert job.params["format"] == "zpl" and job.params["kind"] == "final"
    run(job.pk)
    download = client.get(f"/admin/documents/documentjob/{job.pk}/download/")
    assert download.status_code == 200
    zpl = b"".join(download.streaming_content if download.streaming else [download.content]).decode()
    labels = split_labels(zpl)
    serials = set(released_lot.vials.values_list("serial", flat=True))
    assert len(labels) == len(serials)
    read = set()
    for label in labels:
        fields = dict(parse_gs1_raw(zpl_datamatrix_to_gs1(barcode_fields(label, "^BX")[0])))
        assert fields["10"] == released_lot.lot_number
        read.add(fields["21"])
    assert read == serials  # each vial once
    from cmlims.models import AuditEntry

    downloads = AuditEntry.objects.filter(object_type="documents.documentjob", object_id=str(job.pk),
                                          action="downloaded")
    assert [e.username for e in downloads] == ["ship1"]  # the admin download is audited too


@pytest.mark.django_db
@pytest.mark.req("LBL-QUARANTINE", via="browser")
def test_admin_refuses_quarantine_labels_for_a_released_lot(chain, released_lot):
    client = staff_client(chain.lab1)
    response = client.post("/admin/batches/cmlot/", {"action": "documents_print_quarantine_labels",
                                                     "_selected_action": [released_lot.pk]}, follow=True)
    assert response.status_code == 200
    assert f"Quarantine labels cannot be printed for lot {released_lot.lot_number}" in response.content.decode()
    assert not DocumentJob.objects.exists()


@pytest.mark.django_db
@pytest.mark.req("FEAT-CERTIFICATES")
def test_coa_says_which_result_was_set_aside_in_the_same_queries(chain, spec, qc2, shipper,
                                                                  django_assert_num_queries):
    # The certificate's results read joins only the item and the invalidation's signature (B5): the set-aside
    # line (who invalidated it, when, why) still costs no query of its own.
    from batches.models import LotStatus
    from cmlims.audit import chain_head
    from cmlims.documents.registry import BuildContext
    from qc.documents import COA, coa_report
    from qc.services.results import result_invalidate
    from tests.support.builders import enter, lot_at, lot_qc_complete, lot_release

    lot = lot_at(chain, LotStatus.PACKAGED)
    first = enter(lot, "pH (reconstituted)", "7.3", "pH", analyst=chain.lab1)
    first = result_invalidate(result=first, actor=qc2, username=qc2.username, password=PASSWORD,
                              reason="pH meter calibration overdue (INV-7)")
    lot = lot_release(lot_qc_complete(lot, analyst=chain.lab1, approver=qc2, officer=chain.qc), officer=chain.qc)
    ctx = BuildContext(job_id=0, kind=COA, params={"lot_number": lot.lot_number}, requested_by=shipper,
                       subject_type="batches.cmlot", subject_id=str(lot.pk), chain_head=chain_head(),
                       progress=lambda _percent: None)
    with django_assert_num_queries(12):
        report, _lot = coa_report(ctx)
    stamp = f"{first.invalidated_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    assert report.sections[1].paragraphs == [
        f"Invalidated results (not counted): pH (reconstituted) = 7.3 pH (tested {first.tested_at:%Y-%m-%d}): "
        f"invalidated by Qc2 Tester on {stamp}: pH meter calibration overdue (INV-7)"]
    assert report.sections[2].table_rows[0][4] == "unchanged"  # the release's content check read the same rows


@pytest.mark.django_db
@pytest.mark.req("FEAT-CERTIFICATES")
def test_coa_reads_each_kind_of_record_once(chain, released_lot, shipper, django_assert_num_queries):
    # B5: the lot, its specification with its items (one query), its results (the table, the set-aside ones and
    # the signatures' content check share one read), the signatures, and the content check's investigations, audit
    # review and genealogy (contributions, passages, freeze-drying run and phases, packaging run, vial counts).
    from cmlims.audit import chain_head
    from cmlims.documents.registry import BuildContext
    from qc.documents import COA, coa_report
    from qc.selectors import lot_specification, spec_items

    ctx = BuildContext(job_id=0, kind=COA, params={"lot_number": released_lot.lot_number}, requested_by=shipper,
                       subject_type="batches.cmlot", subject_id=str(released_lot.pk), chain_head=chain_head(),
                       progress=lambda _percent: None)
    with django_assert_num_queries(12):
        report, lot = coa_report(ctx)
    results, release = report.sections[1], report.sections[2]
    items = spec_items(lot_specification(lot))
    assert lot.pk == released_lot.pk and [row[0] for row in results.table_rows] == [i.test for i in items]
    assert all(row[4] == "pass" for row in results.table_rows)
    assert [row[1] for row in release.table_rows] == ["released"] and release.table_rows[0][4] == "unchanged"
