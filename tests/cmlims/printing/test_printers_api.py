"""Printers through the API: lab staff add and change them (audited), addresses checked per kind."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmlims import roles
from cmlims.models import AuditEntry
from cmlims.printing.addresses import (
    IPP_ADDRESS_PATTERN,
    ZPL_ADDRESS_PATTERN,
    address_parse,
    ipp_address_parse,
    zpl_address_parse,
)
from cmlims.printing.models import Printer

ZEBRA = {"name": "Zebra bench 2", "location": "Packaging room, bench 2", "kind": "zpl", "address": "10.0.4.21:9100",
         "stock_width_mm": "50.0", "stock_height_mm": "25.0", "stock_material": "polypropylene, cryo-rated"}


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-1")
def test_lab_staff_add_and_change_a_printer_and_each_change_is_audited(lab1, auth_client):
    client = auth_client(lab1)
    created = client.post("/api/v1/printers/", ZEBRA, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["id"] and body["kind"] == "zpl" and body["enabled"] is True and body["stock_width_mm"] == "50.0"
    changed = client.patch(f"/api/v1/printers/{body['id']}/", {"enabled": False, "location": "Store"}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["enabled"], changed.json()["location"], changed.json()["address"]) == (
        False, "Store", "10.0.4.21:9100")
    entries = AuditEntry.objects.filter(object_type="printing.printer", object_id=str(body["id"])).order_by("sequence")
    assert [e.action for e in entries] == ["created", "changed"]
    assert entries[1].changes["enabled"] == [True, False]
    listed = client.get("/api/v1/printers/").json()["results"]
    assert [p["name"] for p in listed] == ["Zebra bench 2"]


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-1")
@pytest.mark.parametrize("change,problem", [
    ({"address": "10.0.4.21"}, "must be host:port"),
    ({"kind": "ipp"}, "ipp:// or ipps://"),
])
def test_an_address_that_does_not_fit_the_kind_is_a_400_naming_the_field(lab1, auth_client, change, problem):
    client = auth_client(lab1)
    response = client.post("/api/v1/printers/", {**ZEBRA, **change}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert problem in response.json()["fields"]["address"][0]
    assert not Printer.objects.exists()


@pytest.mark.django_db
@pytest.mark.req("FEAT-PRINT-1")
def test_only_lab_staff_manage_printers(make_user, lab1, auth_client):
    shipper = make_user("ship9", roles.SHIPPING_COORDINATOR)
    client = auth_client(shipper)
    assert client.post("/api/v1/printers/", ZEBRA, format="json").status_code == 403
    printer = auth_client(lab1).post("/api/v1/printers/", ZEBRA, format="json").json()
    assert client.get("/api/v1/printers/").status_code == 200
    assert client.patch(f"/api/v1/printers/{printer['id']}/", {"enabled": False}, format="json").status_code == 403
    assert Printer.objects.get().enabled


@pytest.mark.req("README-FUZZ")
@settings(max_examples=200, database=None)
@given(zpl=st.from_regex(ZPL_ADDRESS_PATTERN, fullmatch=True), ipp=st.from_regex(IPP_ADDRESS_PATTERN, fullmatch=True))
def test_every_address_the_schema_offers_for_a_kind_is_one_that_kind_parses(zpl, ipp):
    # the schema's printer shapes (POST /api/v1/printers/ is a oneOf by kind) state these patterns
    assert zpl_address_parse(zpl).port >= 1
    assert ipp_address_parse(ipp).port >= 1
    for kind, wrong in (("zpl", ipp), ("ipp", zpl)):
        with pytest.raises(ValueError):
            address_parse(kind, wrong)
