"""Admin lists export as CSV and XLSX (read back), with spreadsheet formulas neutralised."""

import csv
import io

import pytest
from openpyxl import load_workbook

from batches.shipping import services
from cmlims import roles
from cmlims.exports import cell_safe
from tests.support.builders import make_world

pytestmark = pytest.mark.django_db

SHIPMENTS = "/admin/shipping/shipment/"


@pytest.mark.req("FEAT-ADM-EXPORT")
@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_a_formula_start_is_prefixed(text):
    assert cell_safe(text) == "'" + text
    assert cell_safe("SHP-000001") == "SHP-000001" and cell_safe(None) == ""


@pytest.fixture
def shipments(make_user, client):
    coordinator = make_user("ship1", roles.SHIPPING_COORDINATOR, first_name="Sam", last_name="Shipper",
                            is_staff=True)
    world = make_world(coordinator=coordinator)
    # a hostile name typed into master data
    services.consignee_update(consignee=world.consignee, actor=coordinator, name="=cmd|' /C calc'!A0")
    made = [world.shipment(), world.shipment()]
    services.shipment_update(shipment=made[0], actor=coordinator, notes="fragile")
    client.force_login(coordinator)
    return made


def _export(client, shipments, kind):
    response = client.post(SHIPMENTS, {"action": f"export_{kind}", "_selected_action": [s.pk for s in shipments]})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="shipment-')
    return response.content


@pytest.mark.req("FEAT-ADM-EXPORT")
def test_shipment_list_exports_as_csv(client, shipments):
    rows = list(csv.reader(io.StringIO(_export(client, shipments, "csv").decode("utf-8-sig"))))
    assert rows[0] == ["reference", "consignee", "status", "vials", "shipped at", "received at"]
    assert sorted(r[0] for r in rows[1:]) == sorted(s.reference for s in shipments)
    assert {r[1] for r in rows[1:]} == {"'=cmd|' /C calc'!A0"}
    assert {r[2] for r in rows[1:]} == {"draft"}  # the badge's text, not its HTML


@pytest.mark.req("FEAT-ADM-EXPORT")
def test_shipment_list_exports_as_xlsx(client, shipments):
    sheet = load_workbook(io.BytesIO(_export(client, shipments, "xlsx"))).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:3] == ["reference", "consignee", "status"]
    assert sorted(r[0] for r in values[1:]) == sorted(s.reference for s in shipments)
    assert all(r[1] == "'=cmd|' /C calc'!A0" and r[2] == "draft" for r in values[1:])
    assert not any(c.data_type == "f" for row in sheet.iter_rows() for c in row)  # no cell is a formula
