"""Specifications: versioned per product, a draft signed into force by a QC officer, then frozen."""

from decimal import Decimal

import pytest

from cmlims import roles
from cmlims.esign.models import Meaning
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from qc.models import Specification, SpecStatus
from qc.panel import panel_items
from qc.services.specs import spec_item_add, specification_approve, specification_create
from tests.support.builders import PASSWORD, SMALL_PANEL, make_user

pytestmark = pytest.mark.django_db


def test_panel_from_the_reference_csv_with_demo_limits_marked(chain, qc2):
    items = panel_items()
    assert len(items) == 14
    by_test = {i["test"]: i for i in items}
    assert by_test["Residual moisture"]["upper"] == Decimal("3.0") and not by_test["Residual moisture"]["demo_limit"]
    assert by_test["Osmolality (reconstituted)"]["demo_limit"] and by_test["VEGF"]["demo_limit"]
    assert by_test["Sterility"]["passing_values"] == ["no growth"]
    assert by_test["Bacterial endotoxin"]["upper_inclusive"] is False
    spec = specification_create(product=chain.product, title="CM release panel", actor=qc2, items=items)
    assert spec.items.count() == 14 and spec.status == SpecStatus.DRAFT


def test_only_qc_officers_draft_and_approve(chain, qc2):
    with pytest.raises(PermissionDenied):
        specification_create(product=chain.product, title="x", actor=chain.lab1, items=SMALL_PANEL)
    spec = specification_create(product=chain.product, title="x", actor=qc2, items=SMALL_PANEL)
    with pytest.raises(PermissionDenied):
        specification_approve(specification=spec, actor=chain.lab1, username="lab1", password=PASSWORD)


@pytest.mark.req("README-SPEC-VERSIONS")
def test_approval_needs_the_password_and_freezes_the_version(chain, qc2):
    spec = specification_create(product=chain.product, title="x", actor=chain.qc, items=SMALL_PANEL)
    with pytest.raises(InvalidInput) as exc:
        specification_approve(specification=spec, actor=qc2, username="qc2", password="bad")
    assert "password" in exc.value.extra["fields"]
    spec = specification_approve(specification=spec, actor=qc2, username="qc2", password=PASSWORD)
    assert spec.status == SpecStatus.IN_FORCE and spec.approval.meaning == Meaning.SPECIFICATION_APPROVED
    with pytest.raises(Conflict):
        spec_item_add(specification=spec, actor=qc2, test="HGF", unit="pg/mL", limit_kind="min", lower=1)
    with pytest.raises(Conflict):
        specification_approve(specification=spec, actor=qc2, username="qc2", password=PASSWORD)


def test_empty_draft_and_bad_item_refused(chain, qc2):
    empty = specification_create(product=chain.product, title="empty", actor=qc2)
    with pytest.raises(Conflict):
        specification_approve(specification=empty, actor=qc2, username="qc2", password=PASSWORD)
    with pytest.raises(InvalidInput) as exc:
        spec_item_add(specification=empty, actor=qc2, test="pH", unit="pH", limit_kind="range", lower=8, upper=7)
    assert "upper" in exc.value.extra["fields"]
    assert Specification.objects.get(pk=empty.pk).version == 1


def test_api_lists_and_approves(chain, qc2, auth_client, django_assert_num_queries):
    spec = specification_create(product=chain.product, title="x", actor=chain.qc, items=SMALL_PANEL)
    client = auth_client(qc2)
    other = client.post(f"/api/v1/qc/specifications/{spec.pk}/approve/",
                        {"username": "qc2", "password": PASSWORD, "meaning": "result approved"}, format="json")
    assert other.status_code == 400 and "meaning" in other.json()["fields"]
    response = client.post(f"/api/v1/qc/specifications/{spec.pk}/approve/",
                           {"username": "qc2", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "in_force" and body["approval"]["meaning"] == Meaning.SPECIFICATION_APPROVED
    specification_create(product=chain.product, title="v2 draft", actor=qc2, items=SMALL_PANEL)
    # token with its user and roles; specifications with product, approval, signer; items
    with django_assert_num_queries(3):
        listing = client.get("/api/v1/qc/specifications/")
    assert [s["version"] for s in listing.json()["results"]] == [2, 1]
    assert auth_client(chain.lab1).post(f"/api/v1/qc/specifications/{spec.pk}/approve/",
                                        {"username": "lab1", "password": PASSWORD}, format="json").status_code == 403


@pytest.mark.req("RULE-2-SPEC-AUTHOR")
def test_nobody_signs_their_own_specification_into_force(chain, qc2, auth_client):
    spec = specification_create(product=chain.product, title="x", actor=chain.qc, items=SMALL_PANEL[:2])
    with pytest.raises(Conflict) as exc:
        specification_approve(specification=spec, actor=chain.qc, username=chain.qc.username, password=PASSWORD)
    assert exc.value.code == "own_specification"
    spec_item_add(specification=spec, actor=qc2, **SMALL_PANEL[2])  # qc2 now shares the authorship
    response = auth_client(qc2).post(f"/api/v1/qc/specifications/{spec.pk}/approve/",
                                     {"username": qc2.username, "password": PASSWORD}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "own_specification", response.content
    third = make_user("qc3", roles.QC_OFFICER)
    approved = specification_approve(specification=spec, actor=third, username="qc3", password=PASSWORD)
    assert approved.status == SpecStatus.IN_FORCE and approved.approval.signer == third


@pytest.mark.req("RULE-TIME-3")
def test_the_specification_is_chosen_by_the_server_time_of_pooling(chain, spec):
    from qc.selectors import lot_specification
    from tests.support.builders import enter, make_harvest, pool, sign_spec, t

    stricter = [dict(i, upper=Decimal("7.8")) if i["test"] == "pH (reconstituted)" else i for i in SMALL_PANEL]
    v2 = sign_spec(chain.qc, chain.product, items=stricter, effective_days_ago=0)
    # Pooled two days ago by the client's account, recorded now: v2 (in force now) applies, not v1.
    lot = pool(chain, [(make_harvest(chain.lab1, chain.culture, days_ago=3), Decimal("300"))], pooled_at=t(2))
    assert lot.pooled_at < v2.effective_from <= lot.created_at
    assert lot_specification(lot) == v2
    assert not enter(lot, "pH (reconstituted)", "7.9", "pH", analyst=chain.lab1).passed


@pytest.mark.req("RULE-TIME-3")
def test_a_lots_specification_and_its_items_are_read_in_one_query(chain, spec, django_assert_num_queries):
    # The certificate (B5) reads both at once: the same version lot_specification picks, with its items in order.
    from batches.models import CMLot
    from qc.selectors import lot_specification, lot_specification_items, spec_items
    from tests.support.builders import make_harvest, pool, sign_spec, t

    before = pool(chain, [(make_harvest(chain.lab1, chain.culture, days_ago=6), Decimal("300"))], pooled_at=t(5))
    stricter = [dict(i, upper=Decimal("7.8")) if i["test"] == "pH (reconstituted)" else i for i in SMALL_PANEL]
    v2 = sign_spec(chain.qc, chain.product, items=[*stricter, dict(stricter[-1], test="Total protein (BCA)")],
                   effective_days_ago=0)
    after = pool(chain, [(make_harvest(chain.lab1, chain.culture, days_ago=3), Decimal("300"))], pooled_at=t(2))
    for lot, version in ((before, spec), (after, v2)):
        lot = CMLot.objects.get(pk=lot.pk)
        with django_assert_num_queries(1):
            specification, items = lot_specification_items(lot)
        assert specification == version
        assert [i.pk for i in items] == [i.pk for i in spec_items(version)] and len(items) > 1
        assert all(item.specification is specification for item in items)
        with django_assert_num_queries(0):
            assert lot_specification(lot) is specification  # kept on the lot


@pytest.mark.req("README-SPEC-VERSIONS")
def test_a_lot_without_a_specification_has_no_items(chain, django_assert_num_queries):
    from batches.models import CMLot
    from qc.selectors import lot_specification_items
    from tests.support.builders import make_harvest, pool, t

    lot = pool(chain, [(make_harvest(chain.lab1, chain.culture, days_ago=3), Decimal("300"))], pooled_at=t(2))
    lot = CMLot.objects.get(pk=lot.pk)
    with django_assert_num_queries(2):  # no item found, then: is there a version at all?
        assert lot_specification_items(lot) == (None, [])
