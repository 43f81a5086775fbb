"""Hostile input (issue 18 item 4): each answers a clear 4xx naming the field or the file, and writes nothing.

Printer commands in label text, spreadsheet formulas in exports, bodies over the upload limit (refused before
they are read), wrong content types, non-UTF-8 and BOM CSV, times without a zone, very long strings, NUL
characters and deeply nested JSON.
"""

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook

from batches.models import Product
from batches.shipping.exports import csv_render
from batches.shipping.models import Consignee, TemperatureLog, TemperatureReading
from batches.shipping.temperature import logger_csv_parse
from cmlims import roles
from cmlims.api.fields import NO_OFFSET, AwareDateTimeField
from cmlims.exceptions import InvalidInput
from cmlims.exports import formula_neutralised, rows_csv, rows_xlsx
from cmlims.models import AuditEntry
from qc.models import QCResult
from tests.support.builders import make_world

pytestmark = pytest.mark.django_db

CONSIGNEE = {"name": "Klinik Süd", "kind": "clinic", "address_line1": "Ring 4", "city": "München", "country": "DE",
             "contact_name": "B. Huber"}
IMPORT_HEADER = b"lot_number,test,value,unit,analyst,tested_at,instrument\n"


@pytest.fixture
def coordinator(make_user, auth_client):
    return auth_client(make_user("hostile-ship", roles.SHIPPING_COORDINATOR))


@pytest.fixture
def lab(make_user, auth_client):
    return auth_client(make_user("hostile-lab", roles.LAB_STAFF))


def _written():
    """What a refusal must leave as it was: the records it would have made and the audit trail."""
    return Consignee.objects.count(), Product.objects.count(), QCResult.objects.count(), AuditEntry.objects.count()


def _refused(response, status, code, field=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"], body
    if field is not None:
        assert field in body["fields"], body
    return body


# --- printer commands in text that reaches a ZPL or PDF label --------------------------------------------


@pytest.mark.req("README-HOSTILE-INPUT", "FEAT-LABELS")
@pytest.mark.parametrize(("field", "value"), [
    ("name", "Klinik ^XA^FO0,0^FDpwned^FS^XZ"),  # a label of its own inside the shipping label
    ("address_line1", "Ring 4~JA"),  # ~JA cancels every queued label
    ("address_line2", "c/o ^PQ999"),  # print 999 copies
    ("city", "Hamburg\x1b"),  # an escape character
    ("postal_code", "20095\r\n^XZ"),
])
def test_printer_commands_in_consignee_label_text_are_refused_naming_the_field(coordinator, field, value):
    before = _written()
    body = _refused(coordinator.post("/api/v1/consignees/", {**CONSIGNEE, field: value}, format="json"),
                    400, "invalid", field)
    assert "label printer command or control characters" in body["fields"][field][0]
    assert _written() == before


@pytest.mark.req("README-HOSTILE-INPUT")
def test_printer_commands_cannot_be_patched_into_a_consignee_either(coordinator):
    created = coordinator.post("/api/v1/consignees/", CONSIGNEE, format="json")
    assert created.status_code == 201, created.content
    before = _written()
    _refused(coordinator.patch(f"/api/v1/consignees/{created.json()['id']}/", {"city": "~JR"}, format="json"),
             400, "invalid", "city")
    assert _written() == before and Consignee.objects.get().city == "München"


@pytest.mark.req("README-HOSTILE-INPUT", "FEAT-LABELS")
def test_printer_commands_in_a_product_name_are_refused(lab):
    before = _written()
    body = {"name": "CM-Lyo ^XA^XZ", "gtin": "09506000134352", "shelf_life_days": 365}
    _refused(lab.post("/api/v1/products/", body, format="json"), 400, "invalid", "name")
    assert _written() == before


# --- spreadsheet formulas in every CSV or XLSX export ------------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+HYPERLINK(\"http://x\")", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


def _read_csv(data: bytes | str) -> list[list[str]]:
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.req("README-CSV-INJECTION")
@pytest.mark.parametrize("export", ["admin list CSV", "admin list XLSX", "recall CSV", "audit trail CSV"])
def test_no_export_writes_a_cell_a_spreadsheet_would_run(export):
    rows = [[value, "plain"] for value in FORMULAS]
    if export == "admin list CSV":
        cells = [row[0] for row in _read_csv(rows_csv(["a", "b"], rows))[1:]]
    elif export == "admin list XLSX":
        sheet = load_workbook(io.BytesIO(rows_xlsx(["a", "b"], rows, title="t"))).active
        assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)
        cells = [row[0].value.replace("\n", "\r") if row[0].value.startswith("'\n") else row[0].value
                 for row in list(sheet.iter_rows())[1:]]  # XLSX stores a CR as a line feed
    elif export == "recall CSV":
        cells = [row[0] for row in _read_csv(csv_render(["a", "b"], rows))[1:]]
    else:  # the sign-off page's trail export writes each cell through this
        cells = [formula_neutralised(value) for value in FORMULAS]
    assert cells == ["'" + value for value in FORMULAS]


# --- uploads: size, content type, encoding ---------------------------------------------------------------


class UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, *args):
        raise AssertionError("the oversized body was read")

    readline = read


@pytest.mark.req("README-HOSTILE-INPUT", "README-API-ERRORS")
@pytest.mark.parametrize("path", ["/api/v1/qc/results/import/", "/api/v1/shipments/1/temperature-log/",
                                  "/api/v1/consignees/"])
def test_a_body_over_the_upload_limit_is_413_before_a_byte_is_read(lab, settings, path):
    settings.CMLIMS_MAX_UPLOAD_BYTES = 1024 * 1024
    before = _written()
    response = lab.generic("POST", path, content_type="multipart/form-data; boundary=x",
                           **{"wsgi.input": UnreadableBody(), "CONTENT_LENGTH": str(2 * 1024**3)})
    body = _refused(response, 413, "payload_too_large")
    assert body["limit"] == 1024 * 1024 and str(2 * 1024**3) in body["message"]
    assert response["Connection"] == "close"
    assert _written() == before


@pytest.mark.req("README-HOSTILE-INPUT")
def test_a_file_just_over_the_limit_is_413_and_imports_nothing(lab, settings):
    settings.CMLIMS_MAX_UPLOAD_BYTES = 2000
    data = IMPORT_HEADER + b"x" * 2001
    before = _written()
    response = lab.post("/api/v1/qc/results/import/",
                        {"file": SimpleUploadedFile("big.csv", data, content_type="text/csv")}, format="multipart")
    _refused(response, 413, "payload_too_large")
    assert _written() == before


@pytest.mark.req("README-HOSTILE-INPUT", "README-API-ERRORS")
def test_wrong_content_types_are_415(lab):
    before = _written()
    _refused(lab.generic("POST", "/api/v1/storage-locations/", "name=x", content_type="text/plain"),
             415, "unsupported_media_type")
    pdf = SimpleUploadedFile("results.pdf", b"%PDF-1.7\n", content_type="application/pdf")
    body = _refused(lab.post("/api/v1/qc/results/import/", {"file": pdf}, format="multipart"),
                    415, "unsupported_media_type", "file")
    assert "application/pdf is not CSV" in body["message"]
    assert _written() == before


def _import(client, data: bytes):
    return client.post("/api/v1/qc/results/import/",
                       {"file": SimpleUploadedFile("export.csv", data, content_type="text/csv")}, format="multipart")


@pytest.mark.req("README-HOSTILE-INPUT")
@pytest.mark.parametrize(("data", "problem"), [
    (IMPORT_HEADER.replace(b"lot_number", b"Losnummer \xe4") + b"a,b\n", "the file is not UTF-8 text"),  # Latin-1
    ("lot_number,test,value\n".encode("utf-16"), "the file is not UTF-8 text"),
    (IMPORT_HEADER + b"LOT\x00,pH,7,pH,lab1,2026-01-01T00:00:00Z,x\n", "the file contains NUL characters"),
    (IMPORT_HEADER + b"x" * 200_000 + b",pH,7,pH,lab1,2026-01-01T00:00:00Z,x\n", "not readable CSV"),
    # A byte-order mark is not part of the first column's name: the header is read, there is just no data.
    (b"\xef\xbb\xbf" + IMPORT_HEADER, "the file has no data rows"),
])
def test_unreadable_csv_files_are_400_naming_the_file_problem(lab, data, problem):
    before = _written()
    body = _refused(_import(lab, data), 400, "invalid")
    assert [r["row"] for r in body["rows"]] == [0] and problem in body["rows"][0]["problem"], body
    assert _written() == before


@pytest.mark.req("README-HOSTILE-INPUT")
def test_logger_files_not_utf8_with_nul_or_a_bom(lab):
    with pytest.raises(InvalidInput) as refused:
        logger_csv_parse("timestamp,temperature_c\n2026-03-01T08:00:00+01:00,5°\n".encode("latin-1"))
    assert refused.value.extra["fields"] == {"file": ["is not UTF-8 text; export the logger data as CSV"]}
    with pytest.raises(InvalidInput) as refused:
        logger_csv_parse(b"timestamp,temperature_c\n2026-03-01T08:00:00Z,5\x00\n")
    assert refused.value.extra["rows"][0]["column"] == "temperature_c"
    readings = logger_csv_parse(b"\xef\xbb\xbftimestamp,temperature_c\r\n2026-03-01T08:00:00Z,5\r\n"
                                b"2026-03-01T08:05:00Z,6\r\n")  # Excel's "CSV UTF-8" starts with a BOM
    assert [str(r.temperature_c) for r in readings] == ["5", "6"]


@pytest.mark.req("README-HOSTILE-INPUT")
@pytest.mark.parametrize(("data", "column"), [
    ("timestamp,temperature_c\n2026-03-01T08:00:00+01:00,5°\n".encode("latin-1"), None),
    (b"timestamp,temperature_c\n2026-03-01T08:00:00Z,5\x00\n", "temperature_c"),
    (b"timestamp,temperature_c\n2026-03-01T08:00:00,5\n", "timestamp"),
], ids=["latin-1", "nul", "no zone"])
def test_a_hostile_logger_file_is_400_through_the_api_and_stores_nothing(make_user, auth_client, data, column):
    coordinator = make_user("hostile-logger", roles.SHIPPING_COORDINATOR)
    shipment = make_world(coordinator=coordinator).shipment()
    client = auth_client(coordinator)  # its token is an audit entry: made before counting
    before = (*_written(), TemperatureLog.objects.count(), TemperatureReading.objects.count())
    upload = SimpleUploadedFile("trip.csv", data, content_type="text/csv")
    response = client.post(f"/api/v1/shipments/{shipment.pk}/temperature-log/", {"file": upload},
                           format="multipart")
    body = _refused(response, 400, "invalid")
    assert (body["rows"][0]["column"] == column) if column else ("file" in body["fields"]), body
    assert (*_written(), TemperatureLog.objects.count(), TemperatureReading.objects.count()) == before


# --- times without a zone ----------------------------------------------------------------------------------


@pytest.mark.req("README-HOSTILE-INPUT")
@pytest.mark.parametrize("query", ["created_after=2026-01-01T00:00:00", "created_before=2026-01-01T08:30"])
def test_a_filter_time_without_a_zone_is_400_naming_the_parameter(lab, query):
    field = query.split("=")[0]
    body = _refused(lab.get(f"/api/v1/lots/?{query}"), 400, "invalid", field)
    assert "no UTC offset" in body["fields"][field][0]
    assert lab.get(f"/api/v1/lots/?{query}Z").status_code == 200


@pytest.mark.req("README-HOSTILE-INPUT")
def test_an_imported_result_time_without_a_zone_names_row_and_column(lab):
    before = _written()
    body = _refused(_import(lab, IMPORT_HEADER + b"LOT-X,pH,7.1,pH,hostile-lab,2026-01-01T08:00:00,pH-1\n"),
                    400, "invalid")
    assert {"row": 1, "column": "tested_at",
            "problem": "needs a UTC offset (ISO 8601, e.g. 2026-05-04T10:30:00+02:00)"} in body["rows"]
    with pytest.raises(InvalidInput) as refused:
        logger_csv_parse(b"timestamp,temperature_c\n2026-03-01T08:00:00,5\n")
    problem = "'2026-03-01T08:00:00' has no UTC offset (add Z or ±hh:mm): local times are ambiguous"
    assert refused.value.extra["rows"] == [{"row": 1, "column": "timestamp", "problem": problem}]
    assert _written() == before


# --- very long strings, NUL characters, deep JSON ---------------------------------------------------------


@pytest.mark.req("README-HOSTILE-INPUT", "README-API-ERRORS")
def test_very_long_strings_are_400_naming_each_field(coordinator):
    before = _written()
    long = "x" * 100_000
    body = _refused(coordinator.post("/api/v1/consignees/", {**CONSIGNEE, "name": long, "city": long},
                                     format="json"), 400, "invalid")
    assert set(body["fields"]) == {"name", "city"} and "no more than 200" in body["fields"]["name"][0]
    assert len(json.dumps(body)) < 2000  # the answer does not echo the input back
    assert _written() == before
    _refused(coordinator.get("/api/v1/shipments/" + "9" * 5000 + "/"), 404, "not_found")


@pytest.mark.req("README-HOSTILE-INPUT", "README-API-ERRORS")
def test_nul_characters_in_a_json_body_are_400_naming_the_field(coordinator):
    before = _written()
    body = _refused(coordinator.post("/api/v1/consignees/", {**CONSIGNEE, "contact_name": "B.\x00Huber"},
                                     format="json"), 400, "invalid", "contact_name")
    assert "Null characters are not allowed" in body["fields"]["contact_name"][0]
    assert _written() == before


@pytest.mark.req("README-HOSTILE-INPUT", "README-API-ERRORS")
@pytest.mark.parametrize("depth", [33, 5_000, 200_000])
def test_deeply_nested_json_is_400_and_writes_nothing(coordinator, depth):
    before = _written()
    nested = '{"name": ' + "[" * depth + "]" * depth + "}"
    body = _refused(coordinator.generic("POST", "/api/v1/consignees/", nested, content_type="application/json"),
                    400, "parse_error")
    assert "nested deeper than 32 levels" in body["message"]
    assert _written() == before
    # Nesting within the limit is parsed as usual (and refused here for what it is: not a name).
    shallow = '{"name": ' + "[" * 31 + "]" * 31 + "}"
    _refused(coordinator.generic("POST", "/api/v1/consignees/", shallow, content_type="application/json"),
             400, "invalid", "name")


@pytest.mark.req("README-HOSTILE-INPUT")
def test_a_body_time_without_a_zone_is_400_naming_the_field(lab, make_user, auth_client):
    """A JSON body's time without an offset is refused by name, not read in the server's zone (DRF's default)."""
    before = _written()
    result = {"lot_number": "CM26-0001", "test": "pH", "value": "7.1", "unit": "pH", "tested_at": "2026-01-01T08:00"}
    body = _refused(lab.post("/api/v1/qc/results/", result, format="json"), 400, "invalid", "tested_at")
    assert body["fields"]["tested_at"] == [NO_OFFSET]
    # A model's own fields too (the culture's serializer is built from the model).
    body = _refused(lab.post("/api/v1/cultures/", {"started_at": "2026-01-01 08:00:00"}, format="json"),
                    400, "invalid", "started_at")
    assert body["fields"]["started_at"] == [NO_OFFSET]
    assert _written() == before


def _serializer_classes() -> list[type]:
    """Every serializer class the API modules define that may parse input (built ones like ``HarvestInput``
    too); ``…Body`` classes only describe answers in the schema (``cmlims.api.responses``), never parse."""
    import importlib
    import pkgutil

    from rest_framework import serializers

    found: dict[str, type] = {}
    for package in ("batches", "qc", "cmlims"):
        for info in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            if ".api" not in info.name or ".migrations" in info.name:
                continue
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (isinstance(value, type) and issubclass(value, serializers.BaseSerializer)
                        and value.__module__.split(".")[0] in ("batches", "qc", "cmlims")
                        and not value.__name__.endswith("Body")):
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def _writable_times(fields, path: str = ""):
    from rest_framework import serializers

    for name, field in fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.ListSerializer):
            field = field.child
        if isinstance(field, serializers.Serializer):
            yield from _writable_times(field.fields, f"{path}{name}.")
        elif isinstance(field, serializers.DateTimeField):
            yield f"{path}{name}", field


@pytest.mark.req("README-HOSTILE-INPUT")
def test_every_api_input_time_needs_an_offset():
    """A new serializer with a plain DRF DateTimeField for input fails here (use AwareDateTimeField)."""
    classes = _serializer_classes()
    assert len(classes) > 30
    plain = []
    for cls in classes:
        try:
            fields = cls().fields
        except (AssertionError, TypeError):  # a serializer that needs its instance or context: no input fields
            continue
        plain += [f"{cls.__module__}.{cls.__qualname__}.{name}" for name, field in _writable_times(fields)
                  if not isinstance(field, AwareDateTimeField)]
    assert not plain, plain
