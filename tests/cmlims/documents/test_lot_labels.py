"""Lot labels end to end: API request -> 202 -> real worker -> labels read back and compared with the database."""


import pytest
from stdnum import ean

from batches.models import CMLot, Vial
from cmlims.audit import object_type_of
from cmlims.documents.models import DocumentJob, JobStatus, LabelDisposition, LabelPrint
from cmlims.documents.services import document_job_run
from tests.support.documents import (
    barcode_fields,
    parse_gs1_raw,
    pdf_page_texts,
    read_pdf_symbols,
    split_labels,
    wait_done,
    zpl_datamatrix_to_gs1,
)


def post_labels(client, lot, **body):
    return client.post(f"/api/v1/lots/{lot.lot_number}/labels/", body, format="json")


def expected_ais(lot: CMLot, serial: str) -> list[tuple[str, str]]:
    return [("01", lot.product.gtin), ("17", lot.expiry.strftime("%y%m%d")), ("10", lot.lot_number), ("21", serial)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("RULE-4", "1271-265", "FEAT-LABELS")
def test_quarantine_vial_labels_read_back_match_the_database(celery_worker_process, chain, packaged_lot, auth_client):
    client = auth_client(chain.lab1)
    response = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="pdf")
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]
    assert response.json()["url"] == f"/api/v1/jobs/{job_id}/"
    job = wait_done(job_id)
    assert job.status == JobStatus.DONE, job.error
    pdf = b"".join(client.get(f"/api/v1/jobs/{job_id}/download/").streaming_content)
    reads = read_pdf_symbols(pdf)
    vials = list(Vial.objects.filter(lot=packaged_lot).order_by("sequence"))
    assert len(reads) == len(vials) == 10
    lot = CMLot.objects.select_related("product").get(pk=packaged_lot.pk)
    for read, vial in zip(reads, vials, strict=True):
        assert read.symbology == "]d2"
        ais = parse_gs1_raw(read.raw.decode())
        assert ais == expected_ais(lot, vial.serial)
        assert ean.is_valid(dict(ais)["01"])
    assert all("QUARANTINE" in text for text in pdf_page_texts(pdf))
    prints = LabelPrint.objects.filter(job_id=job_id)
    assert sorted(prints.values_list("item_key", flat=True)) == sorted(v.serial for v in vials)
    assert set(prints.values_list("kind", "template", "printed_by_id")) == {("quarantine", "vial", chain.lab1.pk)}


@pytest.mark.django_db  # jobs run in this process: nothing is committed, nothing sent
@pytest.mark.req("RULE-7", "FEAT-LABELS")
def test_reprint_needs_a_reason_and_reconciliation_counts_each_label_once(chain, packaged_lot, auth_client):
    from batches.documents import lot_label_reconciliation

    client = auth_client(chain.lab1)
    serial = Vial.objects.filter(lot=packaged_lot).order_by("sequence").values_list("serial", flat=True)[0]
    first = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="zpl", vials=[serial])
    assert first.status_code == 202
    job_id = first.json()["job"]
    # Run the job twice in this process (a retried/redelivered job): it counts once.
    assert document_job_run(job_id=job_id) == JobStatus.DONE
    assert document_job_run(job_id=job_id) == "skipped"
    assert LabelPrint.objects.filter(item_key=serial).count() == 1

    again = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="zpl", vials=[serial])
    assert again.status_code == 400
    assert "reason" in again.json()["fields"]
    reprint = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="zpl", vials=[serial],
                          reason="label smudged")
    assert reprint.status_code == 202
    document_job_run(job_id=reprint.json()["job"])
    zpl = DocumentJob.objects.get(pk=reprint.json()["job"]).output.read().decode()
    (label,) = split_labels(zpl)
    (data,) = barcode_fields(label, "^BX")
    lot = CMLot.objects.select_related("product").get(pk=packaged_lot.pk)
    assert parse_gs1_raw(zpl_datamatrix_to_gs1(data)) == expected_ais(lot, serial)

    reconciliation = lot_label_reconciliation(lot)
    (row,) = reconciliation.rows
    assert (row.kind, row.items_labelled, row.labels_issued, row.reprints) == ("quarantine", 1, 2, 1)
    assert reconciliation.expected_items == 10 and reconciliation.balanced
    assert LabelPrint.objects.filter(item_key=serial).exclude(reprint_reason="").get().reprint_reason == "label smudged"
    body = client.get(f"/api/v1/lots/{lot.lot_number}/labels/").json()
    assert body == {"lot": lot.lot_number, "vials": 10, "balanced": True, "labels": [
        {"template": "vial", "kind": "quarantine", "items_labelled": 1, "labels_issued": 2, "reprints": 1,
         "used": 1, "destroyed": 1, "returned": 0, "unaccounted": 0, "unexpected": [], "unlabelled": 9}]}
    # The reprint names the label it replaces: recorded destroyed, pointing at the reprint.
    replaced = LabelDisposition.objects.get(item_key=serial)
    reprinted = LabelPrint.objects.filter(item_key=serial).exclude(reprint_reason="").get()
    assert (replaced.disposition, replaced.count, replaced.replaced_by_id) == ("destroyed", 1, reprinted.pk)
    assert replaced.reason.endswith("label smudged")


@pytest.mark.django_db  # jobs run in this process: nothing is committed, nothing sent
@pytest.mark.req("RULE-4", "1271-265")
def test_final_labels_are_refused_unless_rule_4_holds(chain, packaged_lot, shipper, auth_client):
    client = auth_client(shipper)
    response = post_labels(client, packaged_lot, template="vial", kind="final", format="pdf")
    assert response.status_code == 409
    assert {c["code"] for c in response.json()["conditions"]} == {"lot_not_released"}
    # Lab staff may not print final labels, a shipping coordinator no quarantine labels.
    assert post_labels(auth_client(chain.lab1), packaged_lot, template="vial", kind="final",
                       format="pdf").status_code == 403
    assert post_labels(client, packaged_lot, template="vial", kind="quarantine", format="pdf").status_code == 403
    assert not DocumentJob.objects.exists()


@pytest.mark.django_db  # jobs run in this process: nothing is committed, nothing sent
@pytest.mark.req("RULE-4", "FEAT-LABELS")
def test_final_labels_for_a_released_lot(chain, released_lot, shipper, auth_client):
    client = auth_client(shipper)
    response = post_labels(client, released_lot, template="carton", kind="final", format="pdf", carton_size=4)
    assert response.status_code == 202, response.json()
    job_id = response.json()["job"]
    document_job_run(job_id=job_id)
    job = DocumentJob.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE, job.error
    reads = read_pdf_symbols(job.output.read())
    counts = sorted(int(dict(parse_gs1_raw(r.raw.decode()))["37"]) for r in reads)
    available = Vial.objects.filter(lot=released_lot, status="available").count()
    assert sum(counts) == available and max(counts) == 4
    assert all(dict(parse_gs1_raw(r.raw.decode()))["02"] == released_lot.product.gtin for r in reads)
    assert LabelPrint.objects.filter(job_id=job_id, kind="final", template="carton").count() == len(reads)


@pytest.mark.django_db  # jobs run in this process: nothing is committed, nothing sent
def test_bad_input_names_the_field(chain, packaged_lot, auth_client):
    client = auth_client(chain.lab1)
    response = post_labels(client, packaged_lot, template="pallet", kind="draft", format="svg", copies=0)
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"template", "kind", "format", "copies"}
    unknown = post_labels(client, packaged_lot, template="vial", kind="quarantine", format="pdf", vials=["NOPE"])
    assert unknown.status_code == 400 and "NOPE" in unknown.json()["fields"]["vials"][0]
    # An unknown lot in the path with a valid body is 404; the body is checked before the lot is looked up.
    missing = client.post("/api/v1/lots/XX99-9999/labels/", {"template": "vial", "kind": "quarantine",
                                                             "format": "pdf"}, format="json")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found", missing.content
    empty = client.post("/api/v1/lots/XX99-9999/labels/", {}, format="json")
    assert empty.status_code == 400 and set(empty.json()["fields"]) == {"template", "kind", "format"}
    assert object_type_of(CMLot) == "batches.cmlot"


@pytest.mark.django_db
@pytest.mark.req("RULE-4", "README-HOLD")
def test_a_lot_put_on_hold_after_the_request_fails_the_job_and_issues_nothing(chain, released_lot, shipper,
                                                                              auth_client):
    from qc.services.hold import lot_hold

    client = auth_client(shipper)
    response = post_labels(client, released_lot, template="vial", kind="final", format="zpl")
    assert response.status_code == 202
    lot_hold(lot=released_lot, actor=chain.qc, reason="deviation under review")
    assert document_job_run(job_id=response.json()["job"]) == JobStatus.FAILED
    body = client.get(response.json()["url"]).json()
    assert body["status"] == "failed" and "on hold" in body["error"] and body["download"] is None
    assert not LabelPrint.objects.exists()
    refused = post_labels(client, released_lot, template="vial", kind="final", format="zpl")
    assert refused.status_code == 409 and refused.json()["conditions"][0]["code"] == "lot_on_hold"


@pytest.mark.django_db
def test_rule_4_has_one_public_definition_for_final_labels_and_shipping(chain, released_lot):
    import datetime as dt

    from batches.documents import lot_label_conditions
    from batches.selectors import lot_rule4_conditions
    from batches.shipping.services.common import lot_shippable_conditions

    today = released_lot.expiry - dt.timedelta(days=1)
    assert lot_rule4_conditions(released_lot, today=today) == []
    # Each part of rule 4 in memory (a pure check): on hold, expired (the day after expiry), not released.
    released_lot.on_hold, released_lot.hold_reason = True, "deviation"
    assert [c["code"] for c in lot_rule4_conditions(released_lot, today=today)] == ["lot_on_hold"]
    after_expiry = released_lot.expiry + dt.timedelta(days=1)
    assert [c["code"] for c in lot_rule4_conditions(released_lot, today=after_expiry)] == ["lot_on_hold",
                                                                                          "lot_expired"]
    released_lot.on_hold, released_lot.status = False, "qc_complete"
    codes = [c["code"] for c in lot_rule4_conditions(released_lot, today=today)]
    assert codes == ["lot_not_released"]
    # Final labels and allocation read the same definition; quarantine labels do not need release.
    assert lot_label_conditions(released_lot, "final", today=today) == lot_rule4_conditions(released_lot, today=today)
    assert lot_shippable_conditions(released_lot, product_id=released_lot.product_id, today=today) == \
        lot_rule4_conditions(released_lot, today=today)
    assert [c["code"] for c in lot_shippable_conditions(released_lot, product_id=-1, today=today)] == [
        "other_product", "lot_not_released"]
    assert lot_label_conditions(released_lot, "quarantine", today=today) == []


@pytest.mark.django_db  # jobs run in this process: nothing is committed, nothing sent
@pytest.mark.req("1271-370", "FEAT-LABELS")
@pytest.mark.parametrize("template", ["vial", "carton"])
def test_labels_print_the_storage_temperature_and_description_of_the_product(chain, released_lot, shipper,
                                                                             auth_client, template):
    product = released_lot.product
    response = post_labels(auth_client(shipper), released_lot, template=template, kind="final", format="pdf",
                           **({"carton_size": 4} if template == "carton" else {}))
    assert response.status_code == 202, response.json()
    document_job_run(job_id=response.json()["job"])
    job = DocumentJob.objects.get(pk=response.json()["job"])
    assert job.status == JobStatus.DONE, job.error
    pages = pdf_page_texts(job.output.read())
    assert pages
    # From the product record, not from the label code: the text a 1271.370 reviewer reads on each label.
    storage = f"Store at {product.storage_temperature_min_c} to {product.storage_temperature_max_c} °C"
    fill = f"{product.nominal_fill_volume_ml.normalize()} mL fill, freeze-dried"
    for text in pages:
        flat = " ".join(text.split())
        assert storage in flat and fill in flat, flat
        assert product.name in flat and f"EXP {released_lot.expiry:%Y-%m-%d}" in flat, flat
