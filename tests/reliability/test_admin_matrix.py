"""Issue 18 item 1 (admin part): every admin page and action, for each role, gives the access of the role table.

The rules below are written from DESIGN.md's role table, not read from ``role_permissions``: a change to what
a role may do in the admin is a decision someone writes down here. Each cell is a real request as that role
(a staff user in the role's group): a model's list and add page, every custom admin page (with ids that name
nothing: a page a role may not open answers 403 before it looks anything up), and the actions each list
offers. Integration accounts are API only: the admin refuses them everywhere, staff flag or not. Anonymous
cells are `test_permission_matrix.py`'s (every admin URL sends an anonymous browser to the login).
"""


import pytest
from django.contrib import admin
from django.test import Client

from cmlims import roles
from cmlims.admin_site import API_ONLY
from tests.support.admin_urls import admin_urls
from tests.support.builders import PASSWORD
from tests.support.figures import figure_record

pytestmark = pytest.mark.django_db

ADMIN_ROLES = ("lab", "qc", "ship", "integration", "superuser", "no_group")
READERS = frozenset({"lab", "qc", "ship"})  # "read: everything" for the three working roles
SEEN = READERS | {"superuser"}  # the superuser reads in the admin (support, the inspector's host), writes no GMP
NOBODY: frozenset = frozenset()
LAB, QC, SHIP, SU = (frozenset({r}) for r in ("lab", "qc", "ship", "superuser"))

# model -> (who opens its list, who opens its add page). No role deletes anything (GMP records are voided).
MODEL_PAGES: dict[str, tuple[frozenset, frozenset]] = {
    "cmlims.AuditEntry": (SEEN, NOBODY),
    "cmlims.AuditCheckpoint": (SU, NOBODY),
    "cmlims.ApiToken": (SU, NOBODY),
    "cmlims.LoginLock": (QC | SU, NOBODY),
    "auth.User": (SU, SU),
    "auth.Group": (SU, SU),
    "esign.Signature": (SEEN, NOBODY),
    "esign.SigningFailure": (QC | SU, NOBODY),
    "investigations.Investigation": (SEEN, LAB | QC),
    "documents.DocumentJob": (SEEN, NOBODY),
    "documents.LabelPrint": (SEEN, NOBODY),
    "documents.LabelDisposition": (SEEN, NOBODY),
    "printing.Printer": (SEEN, LAB),
    "printing.PrintDispatch": (SEEN, NOBODY),
    "batches.Product": (SEEN, LAB),
    "batches.StorageLocation": (SEEN, LAB),
    "batches.CellSource": (SEEN, LAB),
    "batches.CellBank": (SEEN, LAB),
    "batches.Culture": (SEEN, LAB),
    "batches.Harvest": (SEEN, LAB),
    "batches.CMLot": (SEEN, LAB),
    "batches.LyophilisationRun": (SEEN, LAB),
    "batches.PackagingRun": (SEEN, LAB),
    "batches.Vial": (SEEN, NOBODY),
    "shipping.Consignee": (SEEN, SHIP),
    "shipping.Shipment": (SEEN, SHIP),
    "qc.Specification": (SEEN, QC),
    "qc.QCResult": (SEEN, LAB | QC),
    "qc.LotAuditReview": (LAB | QC | SU, NOBODY),
    "auditfixture.FixtureRecord": (SU, SU),  # the test-only model of the audit tests
}

# Custom admin pages (URL name -> who may open them). Pages not named here fail the suite.
CUSTOM_PAGES: dict[str, frozenset] = {
    "index": SEEN | {"no_group"},
    "password_change": SEEN | {"no_group"},
    "password_change_done": SEEN | {"no_group"},
    "jsi18n": SEEN | {"no_group"},
    "cmlims_timeline": SEEN,
    "cmlims_audit_verify": QC | SU,
    "cmlims_loginlock_clear": QC | SU,
    "auth_user_password_change": SU,
    "documents_documentjob_download": SEEN,
    "batches_cmlot_genealogy": SEEN,
    "batches_cmlot_labels": LAB | SHIP,
    "batches_cellsource_eligibility": QC,
    "batches_product_limits_approve": QC,
    "batches_lyophilisationrun_record_new": LAB,
    "batches_lyophilisationrun_record": LAB,
    "shipping_recall": SEEN,
    "shipping_shipment_step": SHIP,
    "shipping_shipment_chart": SEEN,
    "qc_specification_approve": QC,
    "qc_qcresult_import": LAB | QC,
    "qc_qcresult_approve": QC,
    "qc_qcresult_invalidate": QC,
    "qc_lot_signoff": QC,
    "qc_lot_trail": SEEN,
}
# Void pages: who may void a model's records (those who change them); any other void page opens for nobody
# (a result is not voided in the admin: it is superseded by a retest or invalidated, signed).
VOIDERS: dict[str, frozenset] = {
    "investigations.Investigation": QC, "printing.Printer": LAB, "shipping.Consignee": SHIP,
    "shipping.Shipment": SHIP, "qc.Specification": QC, "auditfixture.FixtureRecord": SU,
    **{f"batches.{m}": LAB for m in ("Product", "StorageLocation", "CellSource", "CellBank", "Culture", "Harvest",
                                     "CMLot", "LyophilisationRun", "PackagingRun", "Vial")},
}
# Django's own pages checked by Django itself per object (autocomplete needs its field parameters; view_on_site,
# history, change and delete redirect or 404 for an id that names nothing), and the login the other file checks.
NOT_CHECKED_HERE = {"login", "logout", "autocomplete", "view_on_site", None}
STANDARD_SUFFIXES = ("changelist", "add", "void", "change", "delete", "history")


def _standard_page_names() -> set[str]:
    return {f"{model._meta.app_label}_{model._meta.model_name}_{suffix}"
            for model in admin.site._registry for suffix in STANDARD_SUFFIXES}

EXPORTS = {"export_csv", "export_xlsx"}
# The lists of records export what they show (CSV, XLSX) to whoever opens them; the registers (audit trail,
# signatures, jobs, tokens, users) have their own exports or none.
EXPORTED = {label for label in MODEL_PAGES if label.split(".")[0] in {"batches", "shipping", "qc", "auditfixture"}
            and label != "qc.LotAuditReview"} | {"investigations.Investigation", "printing.Printer"}
# model -> action -> who is offered it in the list (export: everyone who opens the list).
ACTIONS: dict[str, dict[str, frozenset]] = {
    "cmlims.ApiToken": {"revoke_selected": SU},
    "batches.CellBank": {"verify_selected": LAB},
    "batches.Culture": {"start_conditioning": LAB, "verify_selected": LAB, "verify_passages": LAB},
    "batches.Harvest": {"verify_selected": LAB},
    "batches.LyophilisationRun": {"verify_selected": LAB},
    "batches.PackagingRun": {"verify_selected": LAB},
    "batches.CMLot": {
        "move_to_freeze_drying": LAB, "move_to_packaged": LAB, "move_to_qc_complete": QC,
        "verify_concentration": LAB, "verify_filtration": LAB, "verify_pooling": LAB,
        "documents_print_quarantine_labels": LAB, "documents_print_quarantine_labels_as_zpl": LAB,
        "documents_print_final_vial_labels": SHIP, "documents_print_final_vial_labels_as_zpl": SHIP,
        "documents_print_carton_labels": LAB | SHIP, "documents_generate_batch_record": QC,
        "documents_generate_certificate_of_analysis": QC | SHIP, "show_label_reconciliation": LAB | QC,
        "print_labels_on_a_printer": LAB | SHIP,
    },
}


@pytest.fixture
def admin_clients(make_user):
    groups = {"lab": (roles.LAB_STAFF,), "qc": (roles.QC_OFFICER,), "ship": (roles.SHIPPING_COORDINATOR,),
              "integration": (roles.INTEGRATION,), "no_group": ()}
    users = {name: make_user(f"adm_{name}", *g, is_staff=True) for name, g in groups.items()}
    users["superuser"] = make_user("adm_root", is_staff=True, is_superuser=True)
    clients = {}
    for name, user in users.items():
        clients[name] = Client()
        clients[name].force_login(user)
    return clients


def _refused(response) -> bool:
    return response.status_code == 403 or (response.status_code == 302 and "/admin/login/" in response["Location"])


def _model_url(label: str) -> str:
    app, model = label.split(".")
    return f"/admin/{app}/{model.lower()}/"


@pytest.mark.req("SEC-PERM-MATRIX", via="browser")
def test_every_admin_page_has_a_rule_per_role():
    registered = {model._meta.label for model in admin.site._registry}
    assert registered == set(MODEL_PAGES), "a new admin page needs its rule here"
    names = {name for name, _ in admin_urls(admin.site.get_urls())}
    custom = names - NOT_CHECKED_HERE - _standard_page_names()
    assert custom == set(CUSTOM_PAGES), "a new custom admin page needs its rule here"


@pytest.mark.req("SEC-PERM-MATRIX", "P11-11.10d", "P11-11.10g", via="browser")
def test_every_admin_page_cell_gives_the_access_of_the_role_table(admin_clients, request):
    cells: list[tuple[str, str, frozenset]] = []
    for label, (viewers, adders) in MODEL_PAGES.items():
        cells += [(f"{label} list", _model_url(label), viewers), (f"{label} add", _model_url(label) + "add/", adders)]
    routes = dict(admin_urls(admin.site.get_urls()))
    for label in MODEL_PAGES:
        if (void := f"{label.replace('.', '_').lower()}_void") in routes:
            cells.append((f"{label} void", routes[void], VOIDERS.get(label, NOBODY)))
    cells += [(name, routes[name], allowed) for name, allowed in CUSTOM_PAGES.items()]
    wrong = []
    for what, url, allowed in cells:
        for role in ADMIN_ROLES:
            response = admin_clients[role].get(url)
            refused = _refused(response)
            if refused == (role in allowed) or response.status_code >= 500:
                wrong.append(f"{what} {url} as {role}: {response.status_code}")
    assert wrong == [], '\n'.join(wrong)
    assert len(cells) * len(ADMIN_ROLES) > 500  # really walked (reported in the README)
    figure_record(request, "admin_pages", len(cells))
    figure_record(request, "admin_page_cells", len(cells) * len(ADMIN_ROLES))
    figure_record(request, "admin_roles", len(ADMIN_ROLES))


@pytest.mark.req("SEC-PERM-MATRIX", "P11-11.10g", via="browser")
def test_each_list_offers_each_role_exactly_its_actions(admin_clients, request):
    wrong, lists = [], 0
    for label, (viewers, _) in MODEL_PAGES.items():
        for role in viewers:
            response = admin_clients[role].get(_model_url(label))
            assert response.status_code == 200, (label, role)
            lists += 1
            form = response.context.get("action_form")
            offered = {value for value, _ in form.fields["action"].choices if value} if form else set()
            expected = {name for name, who in ACTIONS.get(label, {}).items() if role in who}
            expected |= EXPORTS if label in EXPORTED else set()
            if offered != expected:
                wrong.append(f"{label} as {role}: offered {sorted(offered - expected)}, "
                             f"missing {sorted(expected - offered)}")
    assert wrong == []
    figure_record(request, "admin_action_lists", lists)


@pytest.mark.req("SEC-PERM-MATRIX", "P11-11.10d")
def test_an_integration_account_cannot_sign_in_to_the_admin(make_user):
    make_user("robot", roles.INTEGRATION, is_staff=True)
    response = Client().post("/admin/login/", {"username": "robot", "password": PASSWORD})
    assert response.status_code == 200 and API_ONLY in response.content.decode()
