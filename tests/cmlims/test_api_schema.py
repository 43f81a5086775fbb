"""The OpenAPI schema states what the request serializers accept (issue 18 item 2), so a client built from it
sends what the server takes: patterns, limits, enums and the body formats the input can travel in."""

import re

import pytest

from cmlims import roles
from cmlims.investigations.deviations import deviation_subject_types

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(make_user, auth_client):
    return auth_client(make_user("schema-reader", roles.LAB_STAFF)).get("/api/schema/?format=json").json()


def _component(schema, name):
    return schema["components"]["schemas"][name]["properties"]


def _matches(pattern: str, text: str) -> bool:
    return re.search(pattern.replace(r"\u00", r"\x"), text) is not None


@pytest.mark.req("README-FUZZ")
def test_decimal_patterns_need_a_digit_and_keep_the_fields_limits(schema):
    percent = _component(schema, "CellBankInputRequest")["cd73_percent"]["pattern"]
    assert [_matches(percent, text) for text in ("0", "99.95", "100", "100.00", "-", "", ".", "-1", "100.5")] == [
        True, True, True, True, False, False, False, False, False]
    temperature = _component(schema, "ProductInputRequest")["storage_temperature_min_c"]["pattern"]
    assert _matches(temperature, "-80.0") and not _matches(temperature, "-80.05")
    stock = _component(schema, "PrinterInputRequest")["stock_width_mm"]["pattern"]
    assert _matches(stock, "50.5") and not _matches(stock, "0.5")  # min_value 1


@pytest.mark.req("README-FUZZ")
def test_text_patterns_are_the_validators_checks(schema):
    product = _component(schema, "ProductInputRequest")
    assert _matches(product["gtin"]["pattern"], "04012345123456") and not _matches(product["gtin"]["pattern"],
                                                                                   "123456789")
    name = product["name"]
    assert _matches(name["pattern"], "CM Lyo 5 mL") and not _matches(name["pattern"], "X^XZ")
    assert name["minLength"] == 1
    consignee = _component(schema, "ConsigneeInputRequest")
    assert consignee["country"]["pattern"] == "^[A-Z]{2}$"
    assert not _matches(consignee["contact_name"]["pattern"], "   ")  # blank after trimming
    assert not _matches(consignee["contact_phone"]["pattern"], "12\x0034")  # NUL


@pytest.mark.req("README-FUZZ")
def test_lists_enums_and_body_formats(schema):
    assert _component(schema, "PoolInputRequest")["contributions"]["minItems"] == 1
    subject_type = _component(schema, "DeviationRaiseInputRequest")["subject_type"]
    ref = subject_type.get("$ref") or subject_type["allOf"][0]["$ref"]
    assert schema["components"]["schemas"][ref.split("/")[-1]]["enum"] == sorted(deviation_subject_types())
    paths = schema["paths"]
    assert list(paths["/api/v1/lots/"]["post"]["requestBody"]["content"]) == ["application/json"]
    result = paths["/api/v1/qc/results/"]["post"]["requestBody"]["content"]
    assert sorted(result) == ["application/json", "multipart/form-data"]
    assert "attachment" not in result["application/json"]["schema"]["properties"]  # a file only in multipart
    upload = paths["/api/v1/qc/results/import/"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    assert _component(schema, "ImportInputRequest")["file"]["format"] == "binary"


@pytest.mark.req("README-API-ERRORS")
def test_an_unknown_deviation_subject_is_still_refused_naming_the_field_and_the_choices(make_user, auth_client):
    response = auth_client(make_user("schema-lab", roles.LAB_STAFF)).post(
        "/api/v1/deviations/", {"subject_type": "donor", "subject_id": "1", "title": "t", "details": ""},
        format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["subject_type"] == [
        f"must be one of: {', '.join(sorted(deviation_subject_types()))}"]
