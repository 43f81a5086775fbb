"""The OpenAPI schema states what the request serializers accept (issue 18 item 2), so a client built from it
sends what the server takes: patterns, limits, enums and the body formats the input can travel in; and what
every operation answers, success and error, so schemathesis' response check has something to check."""

import re
from decimal import Decimal

import pytest

from cmlims import roles
from cmlims.api.responses import decimal_text
from cmlims.audit import to_jsonable
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


# --- every answer described (issue 18 item 2: schemathesis' response check verifies only what the schema says) ---

# Bodies that are free-form by nature, with the reason: none. A success body listed here would not be checked.
FREE_FORM_RESPONSES: dict[str, str] = {}


def _resolve(schema, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].split("/")[-1]]
    return node


def _undescribed(schema, node: dict) -> bool:
    """A body that says nothing of what it holds: an object without properties (an array of such items too)."""
    node = _resolve(schema, node)
    if any(key in node for key in ("oneOf", "anyOf", "allOf")):
        return any(_undescribed(schema, part) for key in ("oneOf", "anyOf", "allOf") for part in node.get(key, []))
    if node.get("type") == "array":
        return _undescribed(schema, node.get("items", {}))
    return node.get("type", "object") == "object" and not node.get("properties")


def _success_bodies(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            yield f"{method.upper()} {path}", successes


@pytest.mark.req("README-FUZZ")
def test_every_operation_says_what_its_success_answers(schema):
    """A new endpoint without a response schema (a bare ``dict``, ``OpenApiTypes.OBJECT``, or an APIView whose
    only serializer is its input) fails here, named."""
    undescribed, unlisted = [], []
    operations = 0
    for operation, successes in _success_bodies(schema):
        operations += 1
        if operation in FREE_FORM_RESPONSES:
            continue
        if not successes:
            unlisted.append(operation)
        for code, response in successes.items():
            content = response.get("content")
            if content is None:
                if code != "204":
                    undescribed.append(f"{operation} {code}: no body described")
                continue
            for media, body in content.items():
                if "json" in media and _undescribed(schema, body.get("schema", {})):
                    undescribed.append(f"{operation} {code} {media}")
    assert operations >= 118
    assert not unlisted, f"no success response: {unlisted}"
    assert not undescribed, "success bodies without properties (say them with extend_schema(responses=...)):\n" \
        + "\n".join(undescribed)
    assert set(FREE_FORM_RESPONSES) <= {operation for operation, _ in _success_bodies(schema)}  # none stale


@pytest.mark.req("README-FUZZ", "README-API-ERRORS", "REL-FAULT-DB-RESTART")
def test_every_operation_states_the_error_body(schema):
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("4XX", "503"):  # 503: the database unreachable for a moment (retry after Retry-After)
                answer = operation["responses"].get(status, {})
                error = answer.get("content", {}).get("application/json", {})
                if error.get("schema", {}).get("$ref") != "#/components/schemas/ErrorBody":
                    missing.append(f"{method.upper()} {path} {status}")
                if status == "503" and "Retry-After" not in answer.get("headers", {}):
                    missing.append(f"{method.upper()} {path} 503 Retry-After")
    assert not missing, missing
    error = schema["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["code", "message"]
    assert error["properties"]["fields"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}


@pytest.mark.req("README-FUZZ")
def test_hand_built_bodies_say_their_nulls_enums_and_the_status_they_come_with(schema):
    components, paths = schema["components"]["schemas"], schema["paths"]
    shipment = components["ShipmentDetailBody"]
    assert {"vials", "custody", "temperature_log", "signatures", "allowed_transitions"} <= set(shipment["required"])
    assert shipment["properties"]["shipped_at"]["nullable"] and shipment["properties"]["temperature_log"]["nullable"]
    status = _resolve(schema, shipment["properties"]["status"])
    assert status["enum"] == ["draft", "packed", "shipped", "delivered", "receipt_on_hold", "received", "cancelled"]
    assert _resolve(schema, shipment["properties"]["allowed_transitions"]["items"]) == status
    listed = _resolve(schema, paths["/api/v1/shipments/"]["get"]["responses"]["200"]["content"]["application/json"]
                      ["schema"])
    assert set(listed["properties"]) == {"next", "previous", "results"}  # a cursor page of shipments
    # a record made by POST is answered 201 and described as the record, not as the input it was made from
    donor = paths["/api/v1/donors/"]["post"]["responses"]
    assert list(donor) == ["201", "4XX", "503"]
    made = _resolve(schema, donor["201"]["content"]["application/json"]["schema"])
    assert {"id", "code", "tissue", "eligibility_status", "voided_at"} <= set(made["properties"])
    assert "reason" not in made["properties"]
    approve = paths["/api/v1/qc/specifications/{id}/approve/"]["post"]["responses"]["200"]
    assert approve["content"]["application/json"]["schema"]["$ref"].endswith("/SpecificationBody")


@pytest.mark.req("README-FUZZ")
def test_decimals_in_hand_built_bodies_are_plain_text_as_their_schema_says(schema):
    pattern = schema["components"]["schemas"]["TemperatureLogBody"]["properties"]["min_c"]["pattern"]
    texts = [decimal_text(Decimal(value)) for value in ("-80.0", "20", "2.50", "100", "-0.5", "0")]
    assert texts == ["-80", "20", "2.50", "100", "-0.5", "0"]
    assert all(_matches(pattern, text) for text in texts)
    assert not _matches(pattern, to_jsonable(Decimal("-80.0")))  # the audit trail's canonical "-8E+1"
    assert decimal_text(None) is None
