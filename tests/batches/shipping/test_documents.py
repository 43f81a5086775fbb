"""Shipping label and packing list through the job system, read back like a scanner and a reader would."""

import datetime as dt

import pytest
from django.utils import timezone

from batches.shipping import services
from batches.shipping.documents import PACKING_LIST, SHIPPING_LABEL, shipment_document_request
from batches.shipping.gs1 import sscc_is_valid
from cmlims.documents.models import DocumentJob, JobStatus, LabelDisposition, LabelPrint
from cmlims.documents.services import document_job_run
from cmlims.exceptions import InvalidInput
from tests.support.builders import clean_log, sign
from tests.support.documents import (
    barcode_fields,
    parse_gs1_raw,
    pdf_page_texts,
    read_pdf_symbols,
    split_labels,
    wait_done,
)

pytestmark = pytest.mark.django_db(transaction=True)


def run(job: DocumentJob) -> DocumentJob:
    """Run the job here (the service the task calls); if a worker took it first, wait for that run."""
    document_job_run(job_id=job.pk)
    finished = wait_done(job.pk)
    assert finished.status == JobStatus.DONE, finished.error
    return finished


def output(job: DocumentJob) -> bytes:
    with job.output.open("rb") as handle:
        return handle.read()


def packed(world, vials=3):
    lot = world.lot(vials=vials)
    shipment = world.shipment(courier="MedEx", tracking_number="MX77")
    services.shipment_allocate_count(shipment=shipment, count=vials, actor=world.coordinator)
    services.shipment_pack(shipment=shipment, actor=world.coordinator, shipper_type="insulated_box",
                           coolant="gel_packs", logger_serial="LOG-9")
    return lot, shipment


def test_shipping_label_on_a_real_worker_reads_back_as_the_sscc(celery_worker_process, world):
    lot, shipment = packed(world)
    job = shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=world.coordinator)
    job = wait_done(job.pk)
    assert job.status == JobStatus.DONE, job.error
    pdf = output(job)
    reads = read_pdf_symbols(pdf)
    assert len(reads) == 1 and reads[0].symbology == "]C1"
    assert parse_gs1_raw(reads[0].raw.decode()) == [("00", shipment.sscc)] and sscc_is_valid(shipment.sscc)
    text = pdf_page_texts(pdf)[0]
    for expected in ("Klinik Nord", "Hamburg", lot.lot_number, "COUNT 3", "2.0 to 8.0", shipment.reference):
        assert expected in text, expected
    prints = list(LabelPrint.objects.filter(job_id=job.pk))
    assert [(p.item_key, p.kind, p.template) for p in prints] == [(shipment.sscc, "shipping", "shipping")]


def test_reprint_needs_a_reason_and_zpl_carries_the_sscc(world):
    _lot, shipment = packed(world, vials=1)
    first = shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=world.coordinator,
                                      output_format="zpl")
    (label,) = split_labels(output(run(first)).decode())
    assert any(shipment.sscc in field for field in barcode_fields(label, "^BC"))
    with pytest.raises(InvalidInput) as caught:
        shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=world.coordinator)
    assert "reprint_reason" in caught.value.extra["fields"]
    again = shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=world.coordinator,
                                      reprint_reason="label torn at pick-up")
    run(again)
    assert LabelPrint.objects.get(job_id=again.pk).reprint_reason == "label torn at pick-up"


@pytest.mark.req("LBL-SHIPPING", "LBL-RECONCILE", "LBL-REPRINT")
def test_shipping_labels_are_counted_against_the_shipment_and_reconciled(world, auth_client):
    _lot, shipment = packed(world, vials=1)
    run(shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=world.coordinator))
    # A reprint of two copies: the label on the box is recorded destroyed, the second copy is unaccounted for.
    reprint = run(shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=world.coordinator,
                                            copies=2, reprint_reason="label torn at pick-up"))
    client = auth_client(world.coordinator)
    (row,) = client.get(f"/api/v1/shipments/{shipment.pk}/labels/").json()["labels"]
    assert (row["template"], row["labels_issued"], row["used"], row["destroyed"], row["unaccounted"]) == (
        "shipping", 3, 1, 1, 1)
    assert LabelDisposition.objects.get().replaced_by.job_id == reprint.pk
    url = f"/api/v1/shipments/{shipment.pk}/labels/dispositions/"
    assert client.post(url, {"disposition": "destroyed", "count": 3, "reason": "spare"},
                       format="json").status_code == 400
    done = client.post(url, {"disposition": "destroyed", "count": 1, "reason": "second copy not needed"},
                       format="json")
    assert done.status_code == 201, done.json()
    assert done.json()["reconciliation"]["balanced"] is True
    assert done.json()["reconciliation"]["labels"][0]["unaccounted"] == 0


def test_packing_list_lists_vials_lots_consignee_and_chart(world):
    lot, shipment = packed(world, vials=3)
    job = shipment_document_request(shipment=shipment, kind=PACKING_LIST, actor=world.coordinator)
    text = "\n".join(pdf_page_texts(output(run(job))))
    for expected in [shipment.reference, shipment.sscc, "Klinik Nord", lot.lot_number, str(lot.expiry),
                     "CoA not issued yet", "packed by", "Page 1 of", "Audit chain head"] + [
                        v.serial for v in lot.vials.all()]:
        assert expected in text, expected
    assert "Temperature log" not in text
    services.shipment_ship(shipment=shipment, actor=world.coordinator, **sign(world.coordinator, "shipped"))
    services.shipment_deliver(shipment=shipment, actor=world.coordinator)
    services.shipment_temperature_log_upload(shipment=shipment, actor=world.coordinator, file_name="trip.csv",
                                             data=clean_log(timezone.now() - dt.timedelta(hours=2)))
    job = shipment_document_request(shipment=shipment, kind=PACKING_LIST, actor=world.coordinator)
    pdf = output(run(job))
    text = "\n".join(pdf_page_texts(pdf))
    assert "Temperature log" in text and "trip.csv" in text and "no excursion" in text
    assert b"/Subtype /Image" in pdf or b"/Subtype/Image" in pdf  # the chart is embedded


@pytest.mark.req("FEAT-ADM-LABELGEOMETRY")
def test_no_rule_is_drawn_through_the_shipment_line(world):
    """Measured on the drawn PDF: every horizontal rule clears the "SHIPMENT SHP-…" line's glyph boxes."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    from batches.shipping.documents import SHIPPING, shipping_label_data
    from cmlims.documents import labels

    _lot, shipment = packed(world, vials=1)
    from batches.shipping.selectors import shipment_get

    pdf = pypdfium2.PdfDocument(labels.render_pdf(SHIPPING, [shipping_label_data(shipment_get(shipment.pk))]))
    page = pdf[0]
    text = page.get_textpage()
    whole = text.get_text_range()
    wanted = f"SHIPMENT {shipment.reference}"
    start = whole.index(wanted)
    boxes = [text.get_charbox(i) for i in range(start, start + len(wanted)) if not whole[i].isspace()]
    bottom, top = min(b[1] for b in boxes), max(b[3] for b in boxes)
    width = page.get_width()
    rules = [obj.get_bounds() for obj in page.get_objects() if obj.type == pdfium_c.FPDF_PAGEOBJ_PATH]
    rules = [(lo, hi) for left, lo, right, hi in rules if right - left > width * 0.8 and hi - lo < 3]
    assert len(rules) >= 3  # under the sender, under the consignee, above the SSCC
    assert all(hi < bottom - 1 or lo > top + 1 for lo, hi in rules), (rules, bottom, top)


@pytest.mark.req("FEAT-PRINT-6", "LBL-SHIPPING", via="browser")
def test_the_shipment_label_step_prints_on_a_chosen_zebra_with_shipping_stock(world, client, zebra,
                                                                                celery_worker_process):
    from django.urls import reverse

    from tests.support.builders import make_printer

    _lot, shipment = packed(world, vials=1)
    dock = make_printer(world.lab, address=zebra.address, name="Zebra dispatch dock", width="101.6", height="152.4")
    make_printer(world.lab, address="127.0.0.1:1", name="Vial Zebra")  # 50 x 25 mm: not offered for shipping labels
    world.coordinator.is_staff = True
    world.coordinator.save()
    client.force_login(world.coordinator)
    url = reverse("admin:shipping_shipment_step", args=[shipment.pk, "label"])
    form = client.get(url).content.decode()
    assert "Zebra dispatch dock" in form and "Vial Zebra" not in form
    sent = client.post(url, {"printer": str(dock.pk), "format": "pdf", "copies": "1", "reprint_reason": ""})
    job = DocumentJob.objects.get(kind=SHIPPING_LABEL)
    assert sent.status_code == 302 and sent.url == reverse("admin:documents_documentjob_change", args=[job.pk])
    assert job.params["printer"] == dock.pk and job.params["format"] == "zpl"  # the printer's format, not the file's
    # The session's worker runs it (the label counted on the printer below): running it here as well raced
    # that worker, and two executions of one job at once print twice (noted as a defect to fix: a running
    # job's lease is not held against a second execution).
    assert wait_done(job.pk).status == JobStatus.DONE
    assert "<strong>printed</strong> on Zebra dispatch dock" in client.get(sent.url).content.decode()
    assert len(zebra.printed) == 1 and shipment.reference.encode() in zebra.printed[0]
