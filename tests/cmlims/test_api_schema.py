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
    stock = _component(schema, "ZplPrinterInputRequest")["stock_width_mm"]["pattern"]
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


def _one_of(schema, name):
    """The shapes of a ``oneOf`` body component, by component name, with their properties and required."""
    components = schema["components"]["schemas"]
    return {ref["$ref"].split("/")[-1]: (set(components[ref["$ref"].split("/")[-1]]["properties"]),
                                         set(components[ref["$ref"].split("/")[-1]].get("required", [])))
            for ref in components[name]["oneOf"]}


@pytest.mark.req("README-FUZZ")
def test_bodies_of_several_shapes_are_a_one_of_their_shapes(schema):
    components = schema["components"]["schemas"]
    printer = components["PrinterInputRequest"]
    assert printer["discriminator"]["propertyName"] == "kind"
    assert sorted(printer["discriminator"]["mapping"]) == ["ipp", "zpl"]
    zpl, ipp = components["ZplPrinterInputRequest"]["properties"], components["IppPrinterInputRequest"]["properties"]
    assert _matches(zpl["address"]["pattern"], "10.0.4.21:9100") and not _matches(zpl["address"]["pattern"],
                                                                                  "ipp://printhost/office")
    assert _matches(ipp["address"]["pattern"], "ipp://printhost:631/printers/office")
    assert not _matches(ipp["address"]["pattern"], "10.0.4.21:9100")
    allocate = _one_of(schema, "AllocateInputRequest")
    assert allocate["AllocateVialsInputRequest"] == ({"vials"}, {"vials"})
    assert allocate["AllocateCountInputRequest"] == ({"count", "lot"}, {"count"})
    assert components["AllocateCountInputRequest"]["properties"]["count"]["minimum"] == 1
    labels = _one_of(schema, "LotLabelRequestRequest")
    assert "format" not in labels["LotLabelToPrinterRequest"][0] and "printer" in labels["LotLabelToPrinterRequest"][1]
    assert "printer" not in labels["LotLabelAsFileRequest"][0] and "format" in labels["LotLabelAsFileRequest"][1]
    shipping = _one_of(schema, "LabelInputRequest")
    assert "format" not in shipping["ShippingLabelToPrinterInputRequest"][0]
    assert "printer" not in shipping["ShippingLabelAsFileInputRequest"][0]
    locks = _one_of(schema, "LoginLockClearRequest")
    assert locks == {"LoginLockClearUsernameRequest": ({"username", "reason"}, {"username", "reason"}),
                     "LoginLockClearAddressRequest": ({"ip_address", "reason"}, {"ip_address", "reason"})}


@pytest.mark.req("README-FUZZ")
def test_what_the_server_sets_or_signs_is_not_offered_and_each_sign_off_states_its_meaning(schema):
    donor = _component(schema, "CellSourceInputRequest")
    assert "eligibility_status" not in donor and "eligibility_determined_on" not in donor and "tissue" in donor
    components, paths = schema["components"]["schemas"], schema["paths"]
    for step, meaning, reason_required in (("release", "released", False), ("reject", "rejected", True),
                                           ("recall", "recalled", True)):
        ref = paths[f"/api/v1/lots/{{lot_number}}/{step}/"]["post"]["requestBody"]["content"]["application/json"]
        body = components[ref["schema"]["$ref"].split("/")[-1]]
        enum = body["properties"]["meaning"].get("$ref") or body["properties"]["meaning"]["allOf"][0]["$ref"]
        assert components[enum.split("/")[-1]]["enum"] == [meaning]
        assert ("reason" in body["required"]) is reason_required, step
    signing = {}  # every body that signs (a password) states the one meaning its step signs with
    for path, operations in paths.items():
        content = operations.get("post", {}).get("requestBody", {}).get("content", {})
        ref = (content.get("application/json") or content.get("multipart/form-data") or {}).get("schema", {})
        body = components.get(ref.get("$ref", "").split("/")[-1], {})
        if "password" in body.get("properties", {}) and path != "/api/v1/auth/token/":  # that one logs in
            meaning = body["properties"]["meaning"]
            enum = (meaning.get("$ref") or meaning["allOf"][0]["$ref"]).split("/")[-1]
            signing[path] = components[enum]["enum"]
    assert len(signing) >= 12 and all(len(meanings) == 1 for meanings in signing.values()), signing
    assert signing["/api/v1/shipments/{id}/ship/"] == ["shipped"]


@pytest.mark.req("README-FUZZ")
def test_a_positive_decimal_refuses_zero_and_output_says_null_where_a_lot_has_none_yet(schema):
    volume = _component(schema, "ContributionInputRequest")["volume_ml"]["pattern"]
    assert [_matches(volume, text) for text in ("0.01", "12", "0", "0.00", "-1")] == [True, True, False, False, False]
    lot = _component(schema, "LotDetail")
    assert all(lot[name]["nullable"] for name in ("expiry", "volume_out_ml", "yield_percent"))
