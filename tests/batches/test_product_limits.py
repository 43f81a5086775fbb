"""Issue 13 item 4 (rule 2 extended): a product's process limits are approved master data. Lab staff change a
limit; the change waits as a new version until a QC officer who did not make it approves it, signed "product
limits approved" (both components); until then the culture, passage, conditioning, harvest and pooling checks
use the last approved values (409 ``own_product_limits``, ``product_limits_unchanged``,
``product_limits_not_approved``)."""

from decimal import Decimal as D

import factory
import pytest
from django.test import Client

from batches.models import Culture, Product
from batches.services import cultures, products
from cmlims import roles
from cmlims.esign.models import Meaning, Signature
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from tests.support.builders import LATE, PASSWORD, ProductFactory, make_bank, make_donor, make_product, t

pytestmark = pytest.mark.django_db


def url(product) -> str:
    return f"/api/v1/products/{product.pk}/limits/approve/"


@pytest.fixture
def product(lab1):
    return make_product(lab1)  # max_passage 5, approved by the builders' master-data officer (version 1)


@pytest.fixture
def bank(lab1):
    return make_bank(lab1, make_donor(lab1))  # frozen at passage 2


def culture_start(actor, product, bank, code: str) -> Culture:
    return cultures.culture_create(actor=actor, product=product, bank=bank, code=code, started_at=t(2),
                                   vessel="T175", medium_lot="MED-1", reason=LATE)


@pytest.mark.req("RULE-1", "RULE-2", "P11-11.50")
def test_changed_limits_wait_for_qc_approval_over_the_api(product, bank, lab1, qc1, auth_client):
    assert product.limits_version == 1
    lab = auth_client(lab1)
    changed = lab.patch(f"/api/v1/products/{product.pk}/", {"max_passage": 2, "change_reason": "PV-2 tighter"},
                        format="json")
    assert changed.status_code == 200, changed.json()
    product = Product.objects.get(pk=product.pk)
    assert product.max_passage == 2
    # Unapproved: the checks still use version 1 (P5), so a bank frozen at P2 may start a culture.
    assert products.product_limits_in_force(product).max_passage == 5
    culture_start(lab1, product, bank, "CU-0101")

    refused = lab.post(url(product), {"username": "lab1", "password": PASSWORD}, format="json")
    assert refused.status_code == 403  # lab staff never approve
    qc = auth_client(qc1)
    wrong = qc.post(url(product), {"username": "qc1", "password": "nope"}, format="json")
    assert wrong.status_code == 400 and "password" in wrong.json()["fields"]
    assert Product.objects.get(pk=product.pk).limits_version == 1
    done = qc.post(url(product), {"username": "qc1", "password": PASSWORD, "reason": "PV-2 report approved",
                                  "meaning": "product limits approved"}, format="json")
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["limits_version"] == 2 and body["limits_approved"]["max_passage"] == "2"
    assert body["limits_pending"] == {} and body["limits_approval"]["meaning"] == "product limits approved"
    signature = Signature.objects.get(pk=Product.objects.get(pk=product.pk).limits_approval_id)
    assert signature.signer == qc1 and signature.meaning == Meaning.PRODUCT_LIMITS_APPROVED
    # In force now: a bank frozen at P2 is refused for a P2 product.
    with pytest.raises(InvalidInput) as refused_culture:
        culture_start(lab1, Product.objects.get(pk=product.pk), bank, "CU-0102")
    assert "up to P2" in str(refused_culture.value)

    again = qc.post(url(product), {"username": "qc1", "password": PASSWORD}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "product_limits_unchanged"


@pytest.mark.req("RULE-2")
def test_whoever_changed_a_limit_does_not_approve_it(product, make_user, auth_client):
    both = make_user("labqc", roles.LAB_STAFF, roles.QC_OFFICER)
    products.product_update(product=product, actor=both, max_hold_hours=D("48"), reason="hold study HS-3")
    response = auth_client(both).post(url(product), {"username": "labqc", "password": PASSWORD}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "own_product_limits"
    product = Product.objects.get(pk=product.pk)
    assert product.limits_version == 1 and products.product_limits_in_force(product).max_hold_hours == D("72")
    assert products.product_limits_pending(product) == {"max_hold_hours": ["72.00", "48.00"]}


@pytest.mark.req("RULE-2")
def test_a_product_never_approved_cannot_be_used(lab1, bank, qc1):
    values = factory.build(dict, FACTORY_CLASS=ProductFactory, name="Unapproved CM", gtin="09506000134352")
    fresh = products.product_create(actor=lab1, **values)  # recorded, never approved
    with pytest.raises(Conflict) as refused:
        culture_start(lab1, fresh, bank, "CU-0103")
    assert refused.value.code == "product_limits_not_approved"
    with pytest.raises(PermissionDenied):
        products.product_limits_approve(product=fresh, actor=lab1, username="lab1", password=PASSWORD)
    approved = products.product_limits_approve(product=fresh, actor=qc1, username="qc1", password=PASSWORD)
    assert approved.limits_version == 1
    assert culture_start(lab1, approved, bank, "CU-0104").status == Culture.Status.ACTIVE


@pytest.mark.req("RULE-2", "P11-11.50")
def test_admin_approval_page_is_qc_only_and_signs(product, lab1, qc1):
    products.product_update(product=product, actor=lab1, min_viability_percent=D("85"), reason="PV-2")
    signing = f"/admin/batches/product/{product.pk}/limits/approve/"
    lab = Client()
    lab.force_login(lab1)
    assert lab.get(signing).status_code == 403
    assert lab.get("/admin/batches/product/999999/limits/approve/").status_code == 403  # before any lookup
    assert "awaiting approval: min_viability_percent" in lab.get(
        f"/admin/batches/product/{product.pk}/change/").content.decode()
    qc = Client()
    qc.force_login(qc1)
    page = qc.get(signing).content.decode()
    assert "product limits approved" in page and "85.00" in page
    bad = qc.post(signing, {"username": "qc1", "password": "nope", "reason": "PV-2"})
    assert bad.status_code == 200 and Product.objects.get(pk=product.pk).limits_version == 1
    done = qc.post(signing, {"username": "qc1", "password": PASSWORD, "reason": "PV-2"})
    assert done.status_code == 302
    product = Product.objects.get(pk=product.pk)
    assert product.limits_version == 2 and product.limits_approval.signer == qc1
    assert products.product_limits_in_force(product).min_viability_percent == D("85")
