"""Label accountability (211.125/211.130): every label printed counts against the lot's (or shipment's) issuance;
destroyed and returned labels are recorded; a reprint records the label it replaces; issued − used − destroyed −
returned = 0 is shown in the batch record and gates release (409 ``labels_unreconciled``).

Labels go to the Zebra simulator on loopback (a real socket) and the job runs in this process, as the worker would.
"""

import pytest
from django.urls import reverse

from batches.models import CMLot, LotStatus, Vial
from cmlims.documents.models import DocumentJob, JobStatus, LabelDisposition, LabelPrint
from cmlims.documents.services import document_job_run
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD, make_printer
from tests.support.documents import barcode_fields, parse_gs1_raw, split_labels, zpl_datamatrix_to_gs1

pytestmark = pytest.mark.django_db


def post_labels(client, lot, **body):
    return client.post(f"/api/v1/lots/{lot.lot_number}/labels/", body, format="json")


def post_disposition(client, lot, **body):
    return client.post(f"/api/v1/lots/{lot.lot_number}/labels/dispositions/", body, format="json")


def serials(lot, n):
    return list(Vial.objects.filter(lot=lot).order_by("sequence").values_list("serial", flat=True)[:n])


def reconciliation(client, lot):
    body = client.get(f"/api/v1/lots/{lot.lot_number}/labels/").json()
    return body, {(r["template"], r["kind"]): r for r in body["labels"]}


def print_on_zebra(client, lot, printer, **body):
    response = post_labels(client, lot, printer=printer.pk, **body)
    assert response.status_code == 202, response.json()
    assert document_job_run(job_id=response.json()["job"]) == JobStatus.DONE
    return response.json()["job"]


@pytest.mark.req("LBL-RECONCILE", "LBL-DISPOSITION", "LBL-ISSUANCE")
def test_labels_printed_on_the_zebra_are_issued_and_extras_are_recorded_destroyed_or_returned(
        chain, packaged_lot, auth_client, zebra):
    printer = make_printer(chain.lab1, address=zebra.address)
    client = auth_client(chain.lab1)
    wanted = serials(packaged_lot, 3)
    print_on_zebra(client, packaged_lot, printer, template="vial", kind="quarantine", vials=wanted, copies=2)
    # Six labels came out of the printer; each printed DataMatrix is the lot's.
    printed = split_labels(b"".join(zebra.printed).decode())
    assert len(printed) == 3
    assert [[c.args.split(",")[0] for c in label if c.name == "^PQ"] for label in printed] == [["2"]] * 3
    lot = CMLot.objects.select_related("product").get(pk=packaged_lot.pk)
    for label, serial in zip(printed, wanted, strict=True):
        (data,) = barcode_fields(label, "^BX")
        assert parse_gs1_raw(zpl_datamatrix_to_gs1(data)) == [
            ("01", lot.product.gtin), ("17", lot.expiry.strftime("%y%m%d")), ("10", lot.lot_number), ("21", serial)]
    body, rows = reconciliation(client, lot)
    row = rows[("vial", "quarantine")]
    # Three vials wear one label each: the three second copies are not accounted for yet.
    assert (row["labels_issued"], row["used"], row["destroyed"], row["returned"], row["unaccounted"]) == (6, 3, 0, 0, 3)
    assert body["balanced"] is False

    # Refused: no reason; a label never issued; more labels than are out; another role's labels.
    no_reason = post_disposition(client, lot, template="vial", kind="quarantine", disposition="destroyed",
                                 labels=[wanted[0]], reason="")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["fields"]
    never = post_disposition(client, lot, template="vial", kind="quarantine", disposition="destroyed",
                             labels=[serials(lot, 4)[3]], reason="torn")
    assert never.status_code == 400 and "no vial quarantine label was issued" in never.json()["fields"]["labels"][0]
    too_many = post_disposition(client, lot, template="vial", kind="quarantine", disposition="destroyed",
                                labels=[wanted[0]] * 3, reason="torn")
    assert too_many.status_code == 400
    assert too_many.json()["fields"]["labels"] == [f"{wanted[0]}: 3 named, 2 issued and not yet destroyed or returned"]
    shipper = post_disposition(auth_client(chain.qc), lot, template="vial", kind="quarantine",
                               disposition="destroyed", labels=[wanted[0]], reason="torn")
    assert shipper.status_code == 403
    assert not LabelDisposition.objects.exists()

    destroyed = post_disposition(client, lot, template="vial", kind="quarantine", disposition="destroyed",
                                 labels=wanted[:2], reason="second copies, spoiled on the roll")
    assert destroyed.status_code == 201, destroyed.json()
    assert [(r["item"], r["count"], r["disposition"], r["recorded_by"]) for r in destroyed.json()["recorded"]] == [
        (wanted[0], 1, "destroyed", "lab1"), (wanted[1], 1, "destroyed", "lab1")]
    assert destroyed.json()["reconciliation"]["labels"][0]["unaccounted"] == 1
    returned = post_disposition(client, lot, template="vial", kind="quarantine", disposition="returned",
                                labels=[wanted[2]], reason="spare, returned to label control")
    assert returned.status_code == 201
    body, rows = reconciliation(client, lot)
    assert {k: rows[("vial", "quarantine")][k] for k in ("labels_issued", "used", "destroyed", "returned",
                                                         "unaccounted")} == {
        "labels_issued": 6, "used": 3, "destroyed": 2, "returned": 1, "unaccounted": 0}
    # Who, how many, which and why are in the audit trail and listed for the lot.
    entries = AuditEntry.objects.filter(object_type="documents.labeldisposition", action="created")
    assert entries.count() == 3 and {e.user_id for e in entries} == {chain.lab1.pk}
    listed = client.get(f"/api/v1/lots/{lot.lot_number}/labels/dispositions/").json()
    assert [(d["item"], d["disposition"], d["reason"]) for d in listed] == [
        (wanted[0], "destroyed", "second copies, spoiled on the roll"),
        (wanted[1], "destroyed", "second copies, spoiled on the roll"),
        (wanted[2], "returned", "spare, returned to label control")]


@pytest.mark.req("LBL-REPRINT", "RULE-7")
def test_a_reprint_on_the_zebra_needs_a_reason_and_records_the_label_it_replaces(
        chain, packaged_lot, auth_client, zebra):
    printer = make_printer(chain.lab1, address=zebra.address)
    client = auth_client(chain.lab1)
    wanted = serials(packaged_lot, 2)
    print_on_zebra(client, packaged_lot, printer, template="vial", kind="quarantine", vials=wanted)
    refused = post_labels(client, packaged_lot, printer=printer.pk, template="vial", kind="quarantine",
                          vials=[wanted[0]])
    assert refused.status_code == 400
    assert refused.json()["fields"]["reason"] == [f"required to reprint {wanted[0]}"]
    assert len(zebra.printed) == 2
    job_id = print_on_zebra(client, packaged_lot, printer, template="vial", kind="quarantine", vials=[wanted[0]],
                            reason="label smudged when applied")
    assert len(zebra.printed) == 3
    reprint = LabelPrint.objects.get(job_id=job_id)
    replaced = LabelDisposition.objects.get()
    assert (replaced.item_key, replaced.disposition, replaced.count, replaced.replaced_by_id) == (
        wanted[0], "destroyed", 1, reprint.pk)
    assert replaced.reason == f"replaced by reprint (job {job_id}): label smudged when applied"
    assert DocumentJob.objects.get(pk=job_id).params["reprints"] == [wanted[0]]
    body, rows = reconciliation(client, packaged_lot)
    assert {k: rows[("vial", "quarantine")][k] for k in ("labels_issued", "used", "destroyed", "reprints",
                                                         "unaccounted")} == {
        "labels_issued": 3, "used": 2, "destroyed": 1, "reprints": 1, "unaccounted": 0}


@pytest.mark.req("LBL-RECONCILE", "LBL-RELEASE-GATE", via="api")
def test_release_is_refused_while_labels_are_unaccounted_for(chain, releasable, auth_client, zebra):
    printer = make_printer(chain.lab1, address=zebra.address)
    lab = auth_client(chain.lab1)
    serial = serials(releasable, 1)[0]
    print_on_zebra(lab, releasable, printer, template="vial", kind="quarantine", vials=[serial], copies=2)
    officer = auth_client(chain.qc)
    checklist = officer.get(f"/api/v1/lots/{releasable.lot_number}/signoff/").json()
    (condition,) = [c for c in checklist["release_conditions"] if c["code"] == "labels_unreconciled"]
    assert condition["detail"] == (f"labels of lot {releasable.lot_number} do not reconcile: vial quarantine labels: "
                                   "2 issued, 1 used, 0 destroyed, 0 returned, 1 unaccounted for")
    body = {"username": "qc1", "password": PASSWORD, "reason": "",
            "audit_reviewed_through": checklist["audit_review"]["confirm_through"]}
    refused = officer.post(f"/api/v1/lots/{releasable.lot_number}/release/", body, format="json")
    assert refused.status_code == 409 and "labels_unreconciled" in {c["code"] for c in refused.json()["conditions"]}
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.QC_COMPLETE

    assert post_disposition(lab, releasable, template="vial", kind="quarantine", disposition="destroyed",
                            labels=[serial], reason="second copy not needed").status_code == 201
    checklist = officer.get(f"/api/v1/lots/{releasable.lot_number}/signoff/").json()
    assert "labels_unreconciled" not in {c["code"] for c in checklist["release_conditions"]}
    body["audit_reviewed_through"] = checklist["audit_review"]["confirm_through"]
    released = officer.post(f"/api/v1/lots/{releasable.lot_number}/release/", body, format="json")
    assert released.status_code == 200, released.json()


def _staff(user):
    user.is_staff = True
    user.save()
    return user


@pytest.mark.req("LBL-RELEASE-GATE", "LBL-DISPOSITION", "FEAT-PRINT-6", via="browser")
def test_admin_prints_on_a_chosen_printer_records_destroyed_labels_and_the_signoff_gate_says_why(
        chain, releasable, client, zebra):
    from qc.selectors import lot_review_latest_sequence

    vial_printer = make_printer(chain.lab1, address=zebra.address, name="Zebra bench 1")
    make_printer(chain.lab1, address="127.0.0.1:1", name="Carton Zebra", width="100", height="70")
    disabled = make_printer(chain.lab1, address="127.0.0.1:2", name="Old Zebra")
    from cmlims.printing.services import printer_update
    printer_update(printer=disabled, actor=chain.lab1, enabled=False, reason="retired")

    client.force_login(_staff(chain.lab1))
    url = reverse("admin:batches_cmlot_labels", args=[releasable.pk])
    # The lot action leads to the lot's labels page.
    changelist = reverse("admin:batches_cmlot_changelist")
    chosen = client.post(changelist, {"action": "print_labels_on_a_printer", "_selected_action": [releasable.pk]})
    assert chosen.status_code == 302 and chosen.url == url
    page = client.get(url).content.decode()
    vial_form = page[page.index('id="print-vial"'):page.index('id="print-carton"')]
    # Only enabled printers whose stock fits the vial label are offered for vial labels.
    assert "Zebra bench 1" in vial_form and "Carton Zebra" not in vial_form and "Old Zebra" not in vial_form
    serial = serials(releasable, 1)[0]
    sent = client.post(url, {"form": "print-vial", "print-vial-template": "vial", "print-vial-kind": "quarantine",
                             "print-vial-printer": str(vial_printer.pk), "print-vial-vials": serial,
                             "print-vial-copies": "2", "print-vial-reason": ""})
    job = DocumentJob.objects.get()
    assert sent.status_code == 302 and sent.url == reverse("admin:documents_documentjob_change", args=[job.pk])
    assert client.get(sent.url).content.decode().count("waiting for the printer") == 1
    assert document_job_run(job_id=job.pk) == JobStatus.DONE
    job_page = client.get(sent.url).content.decode()
    assert "<strong>printed</strong> on Zebra bench 1 (Packaging room): 1 label(s) confirmed" in job_page
    assert len(zebra.printed) == 1

    # The sign-off page lists the unaccounted label in words, and refuses to release.
    client.force_login(_staff(chain.qc))
    signoff = reverse("admin:qc_lot_signoff", args=[releasable.lot_number])
    text = client.get(signoff).content.decode()
    assert "labels_unreconciled" not in text
    assert f"Labels of lot {releasable.lot_number} do not reconcile: vial quarantine labels: 2 issued, 1 used" in text
    form = {"action": "released", "username": "qc1", "password": PASSWORD, "reason": "ok", "confirm_review": "on",
            "reviewed_through": lot_review_latest_sequence(releasable)}
    client.post(signoff, form)
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.QC_COMPLETE

    # Lab staff record the second copy destroyed on the labels page; then the release goes through.
    client.force_login(chain.lab1)
    bad = client.post(url, {"form": "disposition", "disposition-template": "vial", "disposition-kind": "quarantine",
                            "disposition-disposition": "destroyed", "disposition-reason": "spare",
                            "disposition-labels": f"{serial}\n{serial}\n{serial}"})
    assert bad.status_code == 200 and "3 named, 2 issued and not yet destroyed or returned" in bad.content.decode()
    done = client.post(url, {"form": "disposition", "disposition-template": "vial", "disposition-kind": "quarantine",
                             "disposition-disposition": "destroyed", "disposition-labels": serial,
                             "disposition-reason": "second copy not needed"}, follow=True)
    assert "1 vial quarantine label(s) recorded destroyed" in done.content.decode()
    assert "Every label issued is accounted for." in done.content.decode()
    client.force_login(chain.qc)
    form["reviewed_through"] = lot_review_latest_sequence(releasable)
    client.post(signoff, form)
    assert CMLot.objects.get(pk=releasable.pk).status == LotStatus.RELEASED


@pytest.mark.req("211-188b", "LBL-RECONCILE")
def test_the_batch_record_shows_the_label_reconciliation(chain, packaged_lot, auth_client, zebra, qc2):
    from batches.documents import lot_batch_record_request
    from tests.support.documents import pdf_page_texts

    printer = make_printer(chain.lab1, address=zebra.address)
    client = auth_client(chain.lab1)
    wanted = serials(packaged_lot, 2)
    print_on_zebra(client, packaged_lot, printer, template="vial", kind="quarantine", vials=wanted, copies=2)
    post_disposition(client, packaged_lot, template="vial", kind="quarantine", disposition="destroyed",
                     labels=[wanted[0]], reason="spoiled on the roll")
    job = lot_batch_record_request(lot=packaged_lot, actor=chain.qc)
    assert document_job_run(job_id=job.pk) == JobStatus.DONE
    text = " ".join(" ".join(pdf_page_texts(DocumentJob.objects.get(pk=job.pk).output.read())).split())
    assert "Label reconciliation" in text and "DOES NOT RECONCILE" in text
    assert "vial quarantine labels: 4 issued, 2 used, 1 destroyed, 0 returned, 1 unaccounted for" in text
    assert "Labels destroyed and returned" in text and "spoiled on the roll" in text
