"""Issue 18 item 1 (first part): the permission matrix at the gate.

Every API operation (from the OpenAPI schema the URLconf produces) has a rule below, and so has every admin
model page and action (from the admin registry): a new endpoint, admin page or action without one fails.
Each API cell is then called for each role with a key that names nothing and an empty body: a role the rule
denies must get 401/403; a role it lets through must get anything else (the service then decides with real
data — 400 invalid, 404 not found — and the domain tests check those refusals with real records). Anonymous
is refused everywhere but the public operations, and every admin URL sends an anonymous browser to the login.
"""

import re

import pytest
from django.contrib import admin
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from cmlims import roles
from tests.support.admin_urls import admin_urls
from tests.support.figures import figure_record

pytestmark = pytest.mark.django_db

ROLES = ("lab", "qc", "ship", "integration", "superuser", "no_group", "anonymous")
EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
SHIPPING_READERS = frozenset({"lab", "qc", "ship"})  # integration reads lots and results, not shipments
LOT_READERS = frozenset({"lab", "qc", "ship", "integration"})  # the superuser manages users, reads no lot

# Rules: (method, path pattern) -> the roles the gate lets through. First match wins.
API_RULES: list[tuple[str, str, frozenset]] = [
    ("POST", r"/api/v1/auth/token/", EVERYONE),
    ("*", r"/api/v1/audit/verification/", frozenset({"qc", "superuser"})),
    ("PATCH", r"/api/v1/consignees/\{id\}/", frozenset({"ship"})),
    ("*", r"/api/v1/(consignees|shipments)/.*", SHIPPING_READERS),
    ("GET", r"/api/v1/(lots|donors)/\{\w+\}/recall/.*", SHIPPING_READERS),
    ("POST", r"/api/v1/lots/\{lot_number\}/recall/", SHIPPING_READERS),
    ("GET", r"/api/v1/(vials|donors)/\{\w+\}/trace/", SHIPPING_READERS),
    ("GET", r"/api/v1/lots/(\{lot_number\}/)?", LOT_READERS),
    ("PATCH", r"/api/v1/printers/\{id\}/", frozenset({"lab"})),  # lab staff manage printers
    ("*", r"/api/v1/printers/.*", SHIPPING_READERS),  # who prints labels sees the printers
    # Signing a result (approve, invalidate): the gate lets any signed-in user through, the service signs only
    # for a QC officer (403 otherwise: tests/qc/test_invalidation.py) and never for the result's own analyst.
    ("POST", r"/api/v1/qc/results/\{id\}/(approve|invalidate)/", SIGNED_IN),
    # A QC officer's signed determination; the service refuses every other role (test_donor_eligibility.py).
    ("POST", r"/api/v1/donors/\{key\}/eligibility/", SIGNED_IN),
    # A QC officer's signed approval of a product's process limits; the service refuses every other role.
    ("POST", r"/api/v1/products/\{key\}/limits/approve/", SIGNED_IN),
    # Investigations, deviations and specifications are read by the three working roles (integration reads lots
    # and results only); raising and closing are decided by the services.
    ("GET", r"/api/v1/(investigations|deviations)/.*", SHIPPING_READERS),
    ("GET", r"/api/v1/qc/specifications/", SHIPPING_READERS),
    # The gate lets any signed-in user through to these; the services then refuse by role (their own tests).
    # Named one by one, with no catch-all: a new resource needs its rule written here.
    ("*", r"/api/v1/(auth|cell-banks|cultures|deviations|donors|freeze-drying-phases|freeze-drying-runs|harvests"
          r"|investigations|jobs|lots|me|packaging-runs|passages|products|qc|storage-locations|vials)/.*", SIGNED_IN),
]
# Admin model pages: whose rules live in each app's role_permissions (the changelist and change views
# check the model permissions the roles get); here only the list of pages and actions is pinned, so that
# a new admin or action is a decision someone writes down.
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
ADMIN_MODELS = {
    "cmlims.AuditEntry", "cmlims.AuditCheckpoint", "cmlims.ApiToken", "auth.User", "auth.Group",
    "esign.Signature", "esign.SigningFailure", "investigations.Investigation", "documents.DocumentJob",
    "documents.LabelPrint", "documents.LabelDisposition", "batches.Product", "batches.StorageLocation",
    "batches.CellSource", "batches.CellBank",
    "batches.Culture", "batches.Harvest", "batches.CMLot", "batches.LyophilisationRun", "batches.PackagingRun",
    "batches.Vial", "shipping.Consignee", "shipping.Shipment", "qc.Specification", "qc.QCResult",
    "qc.LotAuditReview", "auditfixture.FixtureRecord", "printing.Printer", "printing.PrintDispatch",
}


def api_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted((method.upper(), path) for path, ops in schema["paths"].items() for method in ops
                  if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"} and path.startswith("/api/v1/"))


def api_rule(method: str, path: str) -> frozenset | None:
    return next((allowed for m, pattern, allowed in API_RULES if m in {"*", method} and re.fullmatch(pattern, path)),
                None)


def _url(path: str) -> str:
    # A key that names nothing (never a real token: a revoke must not end the caller's own session).
    return re.sub(r"\{(\w+)\}", lambda m: "CM-NONE" if m.group(1) in {"lot_number", "code", "serial"} else "999999",
                  path)


@pytest.fixture
def clients(make_user, auth_client):
    users = {"lab": (roles.LAB_STAFF,), "qc": (roles.QC_OFFICER,), "ship": (roles.SHIPPING_COORDINATOR,),
             "integration": (roles.INTEGRATION,), "no_group": ()}
    made = {name: auth_client(make_user(f"m_{name}", *groups)) for name, groups in users.items()}
    made["superuser"] = auth_client(make_user("m_admin", is_staff=True, is_superuser=True))
    made["anonymous"] = APIClient()
    return made


@pytest.mark.req("SEC-PERM-MATRIX")
def test_every_api_operation_and_admin_page_has_a_rule():
    operations = api_operations()
    assert len(operations) > 90  # the schema was really read
    assert [op for op in operations if api_rule(*op) is None] == []
    registered = {model._meta.label for model in admin.site._registry}
    assert registered == ADMIN_MODELS, "a new admin page needs its entry (and its role rules in role_permissions)"
    actions = {model._meta.label: {a if isinstance(a, str) else a.__name__ for a in (model_admin.actions or ())}
               for model, model_admin in admin.site._registry.items()}
    assert {label: names for label, names in actions.items() if names} == ADMIN_ACTIONS


@pytest.mark.req("SEC-PERM-MATRIX", via="api")
def test_every_api_cell_gives_the_access_of_its_rule(clients, request):
    wrong, checked = [], 0
    for method, path in api_operations():
        allowed = api_rule(method, path)
        for role in ROLES:
            status = getattr(clients[role], method.lower())(_url(path), {}, format="json").status_code
            refused = status in {401, 403}
            if refused == (role in allowed) or status >= 500:
                wrong.append(f"{method} {path} as {role}: {status}")
            checked += 1
    assert wrong == []
    assert checked == len(api_operations()) * len(ROLES)
    figure_record(request, "api_permission_cells", checked)  # the validation pack's reliability figures
    figure_record(request, "api_operations", len(api_operations()))
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
