"""Bulk import of instrument exports: all-or-nothing, every row's errors, 10,000 rows in one request."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from cmlims.audit import Action
from cmlims.investigations.models import Investigation
from cmlims.models import AuditEntry
from qc.models import QCResult, ResultSource
from tests.support.builders import lot_at

pytestmark = pytest.mark.django_db
HEADER = ["lot_number", "test", "value", "unit", "analyst", "tested_at", "instrument"]
VALUES = [("pH (reconstituted)", "7.4", "pH"), ("Residual moisture", "12", "mg/g"), ("VEGF", "0.8", "ng/mL"),
          ("Bacterial endotoxin", "0.5", "EU/mL"), ("Sterility", "no growth", "")]


def csv_file(rows, name="export.csv"):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return SimpleUploadedFile(name, out.getvalue().encode(), content_type="text/csv")


def good_rows(lot, n):
    when = (timezone.now() - timedelta(hours=3)).astimezone(timezone.get_fixed_timezone(120)).isoformat()
    return [[lot.lot_number, *VALUES[i % len(VALUES)][:2], VALUES[i % len(VALUES)][2], "lab1", when, "HPLC-2"]
            for i in range(n)]


def post(client, upload):
    return client.post("/api/v1/qc/results/import/", {"file": upload}, format="multipart")


@pytest.mark.req("FEAT-QC-RESULTS")
def test_one_bad_row_among_1000_writes_nothing_and_names_the_row(packaged, chain, auth_client):
    rows = good_rows(packaged, 1000)
    rows[736][1], rows[736][3] = "Bacterial endotoxin", "pg/mL"  # row 737: a unit that cannot be converted
    client = auth_client(chain.lab1)
    entries_before = AuditEntry.objects.count()
    response = post(client, csv_file(rows))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["rows"] == [{"row": 737, "column": "unit",
                             "problem": "'pg/mL' cannot be converted to 'EU/mL' (incompatible units)"}]
    assert QCResult.objects.count() == 0 and AuditEntry.objects.count() == entries_before


def test_every_rows_errors_are_listed(packaged, chain, auth_client):
    rows = good_rows(packaged, 6)
    rows[0][0] = "CM00-0000"
    rows[1][1] = "Colour"
    rows[2][2] = "seven"
    rows[3][4] = "nobody"
    rows[4][5] = "2026-01-01T10:00:00"  # no offset
    rows[5][2] = ""
    response = post(auth_client(chain.lab1), csv_file(rows))
    assert response.status_code == 400
    problems = {(r["row"], r["column"]) for r in response.json()["rows"]}
    assert problems == {(1, "lot_number"), (2, "test"), (3, "value"), (4, "analyst"), (5, "tested_at"), (6, "value")}
    assert QCResult.objects.count() == 0


def test_missing_columns_and_empty_file(packaged, chain, auth_client):
    client = auth_client(chain.lab1)
    bad_header = SimpleUploadedFile("x.csv", b"lot,test,value\nA,B,C\n", content_type="text/csv")
    response = post(client, bad_header)
    assert response.status_code == 400
    assert {r["column"] for r in response.json()["rows"]} >= {"lot_number", "analyst", "tested_at"}
    response = post(client, csv_file([]))
    assert response.status_code == 400 and response.json()["rows"][0]["problem"] == "the file has no data rows"
    assert post(client, SimpleUploadedFile("x.csv", b"\xff\xfe\x00bad", content_type="text/csv")).status_code == 400
    assert client.post("/api/v1/qc/results/import/", {}, format="multipart").status_code == 400


@pytest.mark.req("FEAT-QC-RESULTS", "RULE-5")
def test_a_good_file_imports_every_row_with_one_audit_entry_each(packaged, chain, auth_client):
    rows = good_rows(packaged, 10)
    rows[3][2] = "9.1"  # a failing pH: opens an OOS investigation
    rows[3][1], rows[3][3] = "pH (reconstituted)", "pH"
    response = post(auth_client(chain.lab1), csv_file(rows))
    assert response.status_code == 201, response.content
    assert response.json()["imported"] == 10 and response.json()["original"]["sha256"]
    assert QCResult.objects.filter(source=ResultSource.IMPORT, entered_by=chain.lab1).count() == 10
    assert AuditEntry.objects.filter(object_type="qc.qcresult", action=Action.CREATED).count() == 10
    assert Investigation.objects.count() == 1
    moisture = QCResult.objects.filter(spec_item__test="Residual moisture").first()
    assert str(moisture.value.normalize()) == "1.2"


@pytest.mark.req("P11-11.10g")
def test_wrong_role_is_403(packaged, make_user, auth_client):
    from cmlims import roles

    shipper = make_user("ship1", roles.SHIPPING_COORDINATOR)
    assert post(auth_client(shipper), csv_file(good_rows(packaged, 1))).status_code == 403


def test_ten_thousand_rows_in_one_request(packaged, chain, auth_client):
    response = post(auth_client(chain.lab1), csv_file(good_rows(packaged, 10_000)))
    assert response.status_code == 201, response.content[:500]
    assert response.json()["imported"] == 10_000
    assert QCResult.objects.count() == 10_000


def mixed_rows(lot, n):
    """Every other row late (each tested at its own time, with its own reason), every fifth a failing pH."""
    rows = []
    for i in range(n):
        test, value, unit = VALUES[i % len(VALUES)]
        if i % 5 == 0:
            test, value, unit = "pH (reconstituted)", "9.1", "pH"
        late = i % 2 == 1
        tested = timezone.now() - (timedelta(hours=3, seconds=i) if late else timedelta(minutes=30))
        rows.append([lot.lot_number, test, value, unit, "lab1", tested.isoformat(), "HPLC-2",
                     f"plate {i} read late" if late else ""])
    return rows


def mixed_csv(lot, n) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*HEADER, "reason"])
    writer.writerows(mixed_rows(lot, n))
    return out.getvalue().encode()


@pytest.mark.req("FEAT-QC-RESULTS", "RULE-TIME-2")
def test_import_queries_do_not_grow_with_rows_late_times_or_failures(packaged, chain, settings,
                                                                     django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from qc.services.imports import results_import

    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    with CaptureQueriesContext(connection) as small:
        results_import(data=mixed_csv(packaged, 10), actor=chain.lab1, file_name="small.csv")
    # 40 times as many rows, 20 late test times and 8 failing results more: the same queries.
    with django_assert_num_queries(len(small.captured_queries)):
        results_import(data=mixed_csv(packaged, 400), actor=chain.lab1, file_name="large.csv")
    assert QCResult.objects.count() == 410
    assert Investigation.objects.count() == 2 + 80


@pytest.mark.req("RULE-TIME-2", "P11-11.10e")
def test_each_late_row_of_an_import_has_its_own_time_and_reason_and_the_chain_verifies(packaged, chain, settings):
    from cmlims.verification import audit_chain_verify
    from qc.services.imports import IMPORT_REASON, results_import

    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    results_import(data=mixed_csv(packaged, 20), actor=chain.lab1)
    entries = AuditEntry.objects.filter(object_type="qc.qcresult", action=Action.CREATED).order_by("sequence")
    by_result = {int(e.object_id): e for e in entries}
    assert len(by_result) == 20
    for result in QCResult.objects.all():
        entry = by_result[result.pk]
        if entry.late_entry:
            assert entry.occurred_at == result.tested_at and entry.reason.endswith("read late")
        else:
            assert entry.occurred_at is None and entry.reason == IMPORT_REASON
    assert sum(e.late_entry for e in by_result.values()) == 10
    assert len({e.occurred_at for e in by_result.values() if e.late_entry}) == 10
    report = audit_chain_verify()
    assert report.ok, report.summary()


@pytest.mark.req("FEAT-QC-RESULTS")
def test_failing_imported_results_open_investigations_naming_the_related_lots(packaged, chain, settings):
    from batches.models import LotStatus
    from qc.services.imports import results_import
    from qc.services.results import oos_details

    other = lot_at(chain, LotStatus.PACKAGED)  # the same donor: each lot's OOS names the other
    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    data = mixed_csv(packaged, 10) + b"\n".join(mixed_csv(other, 10).splitlines()[1:]) + b"\n"
    results_import(data=data, actor=chain.lab1)
    details = {(i.subject_repr, i.details) for i in Investigation.objects.all()}
    assert len(details) == 2 and Investigation.objects.count() == 4
    assert {d for _repr, d in details} == {oos_details(packaged), oos_details(other)}
    assert other.lot_number in oos_details(packaged) and packaged.lot_number in oos_details(other)
