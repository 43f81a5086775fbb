"""Issue 18 item 1 (first part): the permission matrix at the gate.

The operations are read from Django's URL resolver (every route outside the admin, with the methods its view
serves), cross-checked against the OpenAPI schema, and each has its own rule below (method + path template ->
the roles that may): no catch-all, so a new endpoint without a rule fails naming it, and a rule without an
endpoint fails too. The admin registry's models and actions are pinned the same way.

Each cell is called for each of the seven roles:
- reads (GET) with the ids of real records built once for the test (tests/support/builders.py): an allowed role
  must get a 2xx, a denied one 403 (401 anonymous);
- writes with ids that match nothing and an empty body, since a real write would change the records the other
  cells read: a denied role must get 403 (401 anonymous) before its body is validated or the record looked up
  (not 400 or 404: a refused caller learns nothing about either), an allowed one anything but 401/403 (the
  service then decides with real data; the domain tests check those refusals with real records).
Every admin URL sends an anonymous browser to the login.

Public routes, a decision written down: ``/healthz`` (a load balancer's probe; states only whether the database,
cache and broker answer), ``/favicon.ico``, ``POST /api/v1/auth/token/`` (how one signs in) and the API's
description (``/api/schema/``, ``/api/docs/``, ``/api/redoc/``): the schema describes the interface and holds
no record, while every operation on a record needs a signed-in user with a role (21 CFR 11.10(d) limits
access to the records). They serve the same to every role.
"""

import datetime as dt
import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from batches.models import CellSource
from batches.shipping import services as shipping
from cmlims import roles
from cmlims.documents import services as documents
from cmlims.investigations.services import investigation_open
from qc.models import QCResult, Specification
from tests.support import builders
from tests.support.admin_urls import admin_urls
from tests.support.figures import figure_record

pytestmark = pytest.mark.django_db

ROLES = ("lab", "qc", "ship", "integration", "superuser", "no_group", "anonymous")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
WORKING = frozenset({"lab", "qc", "ship"})  # DESIGN "Roles": read everything
READERS = WORKING | {"integration"}  # lots and results: the integration account reads those only
LAB, QC, SHIP = frozenset({"lab"}), frozenset({"qc"}), frozenset({"ship"})
ENTRY = frozenset({"lab", "qc", "integration"})  # who enters QC results

# (method, path template) -> the roles that may. Templates are the URLconf's routes, parameters as {name}.
API_RULES: dict[tuple[str, str], frozenset] = {
    # Public (see the module's docstring).
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/favicon.ico"): EVERYONE,
    ("GET", "/api/schema/"): EVERYONE,
    ("GET", "/api/docs/"): EVERYONE,
    ("GET", "/api/redoc/"): EVERYONE,
    ("POST", "/api/v1/auth/token/"): EVERYONE,
    # The caller's own account: tokens are listed and revoked by their owner (or the superuser): decided on the
    # token itself, so any signed-in caller passes the gate.
    ("GET", "/api/v1/me/"): SIGNED_IN,
    ("GET", "/api/v1/auth/tokens/"): SIGNED_IN,
    ("POST", "/api/v1/auth/tokens/{pk}/revoke/"): SIGNED_IN,
    ("POST", "/api/v1/auth/locks/clear/"): frozenset({"qc", "superuser"}),
    ("GET", "/api/v1/audit/verification/"): frozenset({"qc", "superuser"}),
    # A document job is read by whoever may request its kind: the matrix's job is a printer test (lab staff,
    # shipping coordinators).
    ("GET", "/api/v1/jobs/{pk}/"): frozenset({"lab", "ship"}),
    ("GET", "/api/v1/jobs/{pk}/download/"): frozenset({"lab", "ship"}),
    # Lots and their QC results: every role, the integration account included.
    ("GET", "/api/v1/lots/"): READERS,
    ("GET", "/api/v1/lots/{lot_number}/"): READERS,
    ("GET", "/api/v1/lots/{lot_number}/results/"): READERS,
    ("GET", "/api/v1/qc/results/{pk}/"): READERS,
    # What else hangs off a lot is neither a lot nor a result: the three working roles.
    ("GET", "/api/v1/lots/{lot_number}/signoff/"): WORKING,
    ("GET", "/api/v1/lots/{lot_number}/labels/"): WORKING,
    ("GET", "/api/v1/lots/{lot_number}/labels/dispositions/"): WORKING,
    ("GET", "/api/v1/lots/{lot_number}/recall/"): WORKING,
    ("GET", "/api/v1/lots/{lot_number}/recall/csv/"): WORKING,
    ("GET", "/api/v1/vials/{serial}/trace/"): WORKING,
    ("GET", "/api/v1/donors/{code}/trace/"): WORKING,
    ("GET", "/api/v1/donors/{code}/recall/"): WORKING,
    ("GET", "/api/v1/donors/{code}/recall/csv/"): WORKING,
    ("GET", "/api/v1/qc/specifications/"): WORKING,
    ("GET", "/api/v1/investigations/"): WORKING,
    ("GET", "/api/v1/investigations/{pk}/"): WORKING,
    ("GET", "/api/v1/deviations/"): WORKING,
    ("GET", "/api/v1/printers/"): WORKING,
    ("GET", "/api/v1/printers/{pk}/"): WORKING,
    ("GET", "/api/v1/consignees/"): WORKING,
    ("GET", "/api/v1/consignees/{pk}/"): WORKING,
    ("GET", "/api/v1/shipments/"): WORKING,
    ("GET", "/api/v1/shipments/{pk}/"): WORKING,
    ("GET", "/api/v1/shipments/{pk}/temperature-log/"): WORKING,
    ("GET", "/api/v1/shipments/{pk}/temperature-log/chart/"): WORKING,
    ("GET", "/api/v1/shipments/{pk}/labels/"): WORKING,
    # Manufacturing record: lab staff (DESIGN "Roles": culture to packaging, master data).
    **{("POST", f"/api/v1/lots/{{lot_number}}/{step}/"): LAB for step in (
        "contributions", "filtration", "concentration", "verifications", "freeze-drying", "packaging", "void")},
    ("POST", "/api/v1/lots/"): LAB,
    ("POST", "/api/v1/products/"): LAB,
    ("PATCH", "/api/v1/products/{key}/"): LAB,
    ("POST", "/api/v1/storage-locations/"): LAB,
    ("PATCH", "/api/v1/storage-locations/{key}/"): LAB,
    ("POST", "/api/v1/donors/"): LAB,
    ("PATCH", "/api/v1/donors/{key}/"): LAB,
    ("POST", "/api/v1/cell-banks/"): LAB,
    ("PATCH", "/api/v1/cell-banks/{key}/"): LAB,
    ("POST", "/api/v1/cultures/"): LAB,
    ("PATCH", "/api/v1/cultures/{key}/"): LAB,
    ("POST", "/api/v1/cultures/{key}/passages/"): LAB,
    ("POST", "/api/v1/cultures/{key}/harvests/"): LAB,
    ("POST", "/api/v1/cultures/{key}/conditioning/"): LAB,
    ("POST", "/api/v1/cultures/{key}/close/"): LAB,
    ("PATCH", "/api/v1/passages/{key}/"): LAB,
    ("PATCH", "/api/v1/harvests/{key}/"): LAB,
    ("PATCH", "/api/v1/freeze-drying-runs/{key}/"): LAB,
    ("POST", "/api/v1/freeze-drying-runs/{key}/phases/"): LAB,
    ("POST", "/api/v1/freeze-drying-runs/{key}/complete/"): LAB,
    **{("POST", f"/api/v1/{kind}/{{key}}/verify/"): LAB for kind in (
        "cell-banks", "cultures", "passages", "harvests", "freeze-drying-runs", "packaging-runs")},
    **{("POST", f"/api/v1/{kind}/{{key}}/void/"): LAB for kind in (
        "cell-banks", "cultures", "passages", "harvests", "freeze-drying-runs", "packaging-runs", "products",
        "storage-locations", "donors", "freeze-drying-phases")},
    ("POST", "/api/v1/vials/{key}/destroy/"): LAB,
    ("POST", "/api/v1/vials/{key}/move/"): LAB,
    ("POST", "/api/v1/printers/"): LAB,  # lab staff manage printers
    ("PATCH", "/api/v1/printers/{pk}/"): LAB,
    # The lot's pipeline: lab staff move it to freeze drying and packaged, QC officers to qc_complete.
    ("POST", "/api/v1/lots/{lot_number}/transitions/"): frozenset({"lab", "qc"}),
    # QC: results are entered by lab staff, QC officers and the integration account; the rest is the officer's.
    ("POST", "/api/v1/qc/results/"): ENTRY,
    ("POST", "/api/v1/qc/results/import/"): ENTRY,
    ("POST", "/api/v1/qc/results/{pk}/approve/"): QC,
    ("POST", "/api/v1/qc/results/{pk}/invalidate/"): QC,
    ("POST", "/api/v1/qc/specifications/{pk}/approve/"): QC,
    ("POST", "/api/v1/products/{key}/limits/approve/"): QC,
    ("POST", "/api/v1/donors/{key}/eligibility/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/hold/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/unhold/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/audit-review/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/release/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/reject/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/recall/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/batch-record/"): QC,
    ("POST", "/api/v1/lots/{lot_number}/coa/"): frozenset({"qc", "ship"}),  # the coordinator downloads the CoA
    # Labels of a lot: quarantine ones lab staff, final ones the shipping coordinator (the service tells which).
    ("POST", "/api/v1/lots/{lot_number}/labels/"): frozenset({"lab", "ship"}),
    ("POST", "/api/v1/lots/{lot_number}/labels/dispositions/"): frozenset({"lab", "ship"}),
    # Investigations and deviations: raised by lab staff and QC officers, updated and closed by QC officers.
    ("PATCH", "/api/v1/investigations/{pk}/"): QC,
    ("POST", "/api/v1/investigations/{pk}/close/"): QC,
    ("POST", "/api/v1/deviations/"): frozenset({"lab", "qc"}),
    ("POST", "/api/v1/deviations/{pk}/close/"): QC,
    # Shipping: the coordinator's; a QC officer also prints a packing list (for a recall, say).
    ("POST", "/api/v1/consignees/"): SHIP,
    ("PATCH", "/api/v1/consignees/{pk}/"): SHIP,
    ("POST", "/api/v1/shipments/"): SHIP,
    ("PATCH", "/api/v1/shipments/{pk}/"): SHIP,
    **{("POST", f"/api/v1/shipments/{{pk}}/{step}/"): SHIP for step in (
        "allocate", "release-vials", "pack", "ship", "deliver", "receive", "cancel", "temperature-log", "labels",
        "labels/dispositions")},
    ("POST", "/api/v1/shipments/{pk}/packing-list/"): frozenset({"ship", "qc"}),
}

ADMIN_ACTIONS = {
    "cmlims.ApiToken": {"revoke_selected"},
    "batches.CellBank": {"verify_selected"},
    "batches.Culture": {"start_conditioning", "verify_passages", "verify_selected"},
    "batches.Harvest": {"verify_selected"},
    "batches.CMLot": {"documents_generate_batch_record", "documents_print_carton_labels",
                      "documents_print_final_vial_labels", "documents_print_quarantine_labels",
                      "documents_print_final_vial_labels_as_zpl", "documents_print_quarantine_labels_as_zpl",
                      "move_to_freeze_drying", "move_to_packaged", "move_to_qc_complete",
                      "print_labels_on_a_printer", "show_label_reconciliation", "verify_concentration",
                      "verify_filtration", "verify_pooling"},
    "batches.LyophilisationRun": {"verify_selected"},
    "batches.PackagingRun": {"verify_selected"},
}
# Admin model pages: their role rules are checked page by page in test_admin_matrix.py; here the registry is
# pinned, so that a new admin or action is a decision someone writes down.
ADMIN_MODELS = {
    "cmlims.AuditEntry", "cmlims.AuditCheckpoint", "cmlims.ApiToken", "cmlims.LoginLock", "auth.User", "auth.Group",
    "esign.Signature", "esign.SigningFailure", "investigations.Investigation", "documents.DocumentJob",
    "documents.LabelPrint", "documents.LabelDisposition", "batches.Product", "batches.StorageLocation",
    "batches.CellSource", "batches.CellBank",
    "batches.Culture", "batches.Harvest", "batches.CMLot", "batches.LyophilisationRun", "batches.PackagingRun",
    "batches.Vial", "shipping.Consignee", "shipping.Shipment", "qc.Specification", "qc.QCResult",
    "qc.LotAuditReview", "auditfixture.FixtureRecord", "printing.Printer", "printing.PrintDispatch",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Plain Django views (no DRF class to read their methods from): each is GET only (``require_GET``).
FUNCTION_VIEWS = {"/healthz": "healthz", "/favicon.ico": "favicon"}


def _routes(patterns, prefix="/"):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def url_operations() -> list[tuple[str, str, dict]]:
    """(method, path template, {parameter: converter}) of every route outside the admin, from the resolver."""
    found = []
    for route, callback in _routes(get_resolver().url_patterns):
        if route.startswith("/admin/"):
            continue  # the admin's pages: test_admin_matrix.py and the anonymous check below
        template = re.sub(r"<(?:(\w+):)?(\w+)>", r"{\2}", route)
        converters = {name: kind or "str" for kind, name in re.findall(r"<(?:(\w+):)?(\w+)>", route)}
        view = getattr(callback, "cls", None)
        if view is None:
            assert FUNCTION_VIEWS.get(template) == callback.__name__, f"{template}: a new plain view needs its entry"
            found.append(("GET", template, converters))
            continue
        served = callback.initkwargs.get("http_method_names", view.http_method_names)
        found += [(m.upper(), template, converters) for m in HTTP_METHODS if m in served and hasattr(view, m)]
    return sorted(found, key=lambda op: (op[1], op[0]))


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops
            if method in HTTP_METHODS}


def _shape(template: str) -> str:
    return re.sub(r"\{\w+\}", "{}", template)


def _nothing(converter: str) -> str:
    # A key that names nothing (never a real token: a revoke must not end the caller's own session).
    return "999999" if converter == "int" else "CM-NONE"


@pytest.fixture
def clients(make_user, auth_client):
    users = {"lab": (roles.LAB_STAFF,), "qc": (roles.QC_OFFICER,), "ship": (roles.SHIPPING_COORDINATOR,),
             "integration": (roles.INTEGRATION,), "no_group": ()}
    made = {name: auth_client(make_user(f"m_{name}", *groups)) for name, groups in users.items()}
    made["superuser"] = auth_client(make_user("m_admin", is_staff=True, is_superuser=True))
    made["anonymous"] = APIClient()
    return made


@pytest.fixture
def records(clients) -> dict:
    """Real records every read names: {(resource, parameter) or parameter: key}."""
    coordinator = clients["ship"].user
    world = builders.make_world(coordinator=coordinator)
    lot = world.lot(vials=4)
    shipment = world.shipment()  # delivered, with its logger file: the log and its chart exist
    shipping.shipment_allocate_count(shipment=shipment, count=1, actor=coordinator)
    shipping.shipment_pack(shipment=shipment, actor=coordinator, shipper_type="insulated_box", coolant="gel_packs")
    shipping.shipment_ship(shipment=shipment, actor=coordinator, courier="C", tracking_number="T",
                           **builders.sign(coordinator, "shipped"))
    shipping.shipment_deliver(shipment=shipment, actor=coordinator)
    shipping.shipment_temperature_log_upload(shipment=shipment, actor=coordinator, file_name="log.csv",
                                             data=builders.clean_log(timezone.now() - dt.timedelta(hours=2)))
    result = QCResult.objects.filter(lot=lot).first()
    investigation = investigation_open(subject=shipment, kind="temperature_excursion", title="permission matrix",
                                       actor=world.qc)
    printer = builders.make_printer(world.lab, kind="zpl", address="127.0.0.1:9")
    params = {"template": "vial", "format": "pdf", "count": 1, "layout": "page"}
    job = documents.document_job_request(kind="label_test_print", params=params, actor=coordinator)
    assert documents.document_job_run(job_id=job.pk) == "done"  # a finished job: its file can be downloaded
    assert Specification.objects.exists()
    return {"lot_number": lot.lot_number, "serial": lot.vials.first().serial, "code": CellSource.objects.first().code,
            ("shipments", "pk"): shipment.pk, ("consignees", "pk"): world.consignee.pk, ("qc", "pk"): result.pk,
            ("investigations", "pk"): investigation.pk, ("printers", "pk"): printer.pk, ("jobs", "pk"): job.pk}


def _read_url(template: str, records: dict) -> str:
    resource = template.split("/")[3] if template.startswith("/api/v1/") else ""
    return re.sub(r"\{(\w+)\}", lambda m: str(records.get((resource, m.group(1)), records.get(m.group(1)))),
                  template)


def _write_url(template: str, converters: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _nothing(converters[m.group(1)]), template)


@pytest.mark.req("SEC-PERM-MATRIX")
def test_every_operation_and_admin_page_has_a_rule():
    operations = {(method, template) for method, template, _ in url_operations()}
    assert len(operations) > 100  # the URLconf was really walked
    assert sorted(operations - API_RULES.keys()) == [], "an operation without a rule: write down who may"
    assert sorted(API_RULES.keys() - operations) == [], "a rule without an operation"
    # The schema names some parameters its own way (pk as id): compared by shape.
    api = {(method, _shape(template)) for method, template in operations if template.startswith("/api/v1/")}
    assert {(method, _shape(path)) for method, path in schema_operations()} == api, "schema and URLconf disagree"
    registered = {model._meta.label for model in admin.site._registry}
    assert registered == ADMIN_MODELS, "a new admin page needs its entry (and its role rules in role_permissions)"
    actions = {model._meta.label: {a if isinstance(a, str) else a.__name__ for a in (model_admin.actions or ())}
               for model, model_admin in admin.site._registry.items()}
    assert {label: names for label, names in actions.items() if names} == ADMIN_ACTIONS


@pytest.mark.req("SEC-PERM-MATRIX", via="api")
def test_every_api_cell_gives_the_access_of_its_rule(clients, records, request):
    operations = url_operations()
    wrong, checked = [], 0
    for method, template, converters in operations:
        allowed = API_RULES[(method, template)]
        read = method == "GET"
        url = _read_url(template, records) if read else _write_url(template, converters)
        for role in ROLES:
            status = getattr(clients[role], method.lower())(url, {} if not read else None, format="json").status_code
            refusal = 401 if role == "anonymous" and "anonymous" not in allowed else 403
            if role in allowed and template == "/healthz":
                ok = status in {200, 503}  # its answer is the services' state (503: no worker in a test run)
            elif role in allowed:
                ok = 200 <= status < 300 if read else status not in {401, 403} and status < 500
            else:
                ok = status == refusal
            if not ok:
                wrong.append(f"{method} {url} as {role}: {status}")
            checked += 1
    assert not wrong, f"{len(wrong)} cells:\n" + "\n".join(wrong)
    assert checked == len(operations) * len(ROLES)
    figure_record(request, "api_permission_cells", checked)  # the validation pack's reliability figures
    figure_record(request, "api_operations", len(operations))
    figure_record(request, "api_roles", len(ROLES))


@pytest.mark.req("SEC-PERM-MATRIX", via="browser")
def test_every_admin_page_sends_an_anonymous_browser_to_the_login(request):
    client, wrong = Client(), []
    urls = [(name, url) for name, url in admin_urls(admin.site.get_urls()) if name not in {"login", "logout"}]
    assert len(urls) > 100
    for name, url in urls:
        response = client.get(url)
        if response.status_code != 302 or "/admin/login/" not in response["Location"]:
            wrong.append(f"{name} {url}: {response.status_code}")
    assert wrong == []
    figure_record(request, "admin_anonymous_urls", len(urls))


# Custom admin views (not model pages or actions): each named with the roles that may open it. The view itself
# refuses the others (403, or the login page for a user who is not staff).
ADMIN_VIEWS = {
    "/admin/batches/lyophilisationrun/record/": frozenset({"lab"}),  # the one-page drying record: lab work
}


@pytest.mark.req("SEC-PERM-MATRIX", via="browser")
def test_each_custom_admin_view_opens_for_its_roles_only(make_user):
    users = {"lab": (roles.LAB_STAFF,), "qc": (roles.QC_OFFICER,), "ship": (roles.SHIPPING_COORDINATOR,),
             "integration": (roles.INTEGRATION,), "no_group": ()}
    made = {name: make_user(f"v_{name}", *groups, is_staff=True) for name, groups in users.items()}
    made["superuser"] = make_user("v_admin", is_staff=True, is_superuser=True)
    wrong = []
    for url, allowed in ADMIN_VIEWS.items():
        for role, user in made.items():
            client = Client()
            client.force_login(user)
            status = client.get(url).status_code
            if (status == 200) != (role in allowed) or status >= 500:
                wrong.append(f"{url} as {role}: {status}")
    assert wrong == []
