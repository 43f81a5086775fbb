"""At release the vials leave the quarantine store for the released-stock store it names (211.142, 1271.265:
quarantined and released product kept apart), in the release's transaction and audited; the signature is
not disturbed (a vial's storage is not signed content)."""

import pytest

from batches.models import LotStatus, Vial
from batches.services import products
from batches.services.vials import vials_move_to_released_stock
from cmlims.exceptions import InvalidInput
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db


def sign(client, lot, *, reason: str):
    """Release over the API with the officer's own credentials, confirming the audit review."""
    review = client.get(f"/api/v1/lots/{lot.lot_number}/signoff/").json()["audit_review"]
    return client.post(f"/api/v1/lots/{lot.lot_number}/release/", {
        "username": client.user.username, "password": PASSWORD, "reason": reason,
        "audit_reviewed_through": review["confirm_through"]}, format="json")


@pytest.mark.req("1271-265", via="api")
def test_release_moves_the_vials_from_quarantine_to_released_stock(releasable, chain, auth_client):
    quarantine = chain.location
    released = products.storage_location_create(actor=chain.lab1, code="FRZ-R9", name="Released stock",
                                                kind="freezer")
    products.storage_location_update(location=quarantine, actor=chain.lab1, released_stock_location=released)
    vials = list(Vial.objects.filter(lot=releasable))
    assert vials and {v.storage_location_id for v in vials} == {quarantine.pk}

    client = auth_client(chain.qc)
    response = sign(client, releasable, reason="all criteria met")
    assert response.status_code == 200, response.content
    assert response.json()["signature"]["changed_after_signing"] is False
    assert set(Vial.objects.filter(lot=releasable).values_list("storage_location", flat=True)) == {released.pk}
    moves = [e for e in AuditEntry.objects.filter(object_type="batches.vial") if e.changes.get("storage_location_id")
             == [quarantine.pk, released.pk]]
    assert len(moves) == len(vials) and {m.username for m in moves} == {chain.qc.username}
    lot = client.get(f"/api/v1/lots/{releasable.lot_number}/").json()
    assert lot["status"] == LotStatus.RELEASED and lot["release"]["changed_after_signing"] is False


@pytest.mark.req("1271-265")
def test_a_store_that_names_no_released_stock_keeps_its_vials_and_cannot_name_itself(releasable, chain,
                                                                                        auth_client):
    with pytest.raises(InvalidInput) as refused:
        products.storage_location_update(location=chain.location, actor=chain.lab1,
                                         released_stock_location=chain.location)
    assert "released_stock_location" in str(refused.value.extra)
    response = sign(auth_client(chain.qc), releasable, reason="all criteria met")
    assert response.status_code == 200, response.content
    assert set(Vial.objects.filter(lot=releasable).values_list("storage_location", flat=True)) == {chain.location.pk}


@pytest.mark.req("1271-265")
def test_the_move_reads_the_vials_with_their_stores_in_one_locked_query(releasable, chain,
                                                                        django_assert_num_queries):
    quarantine = chain.location
    released = products.storage_location_create(actor=chain.lab1, code="FRZ-R8", name="Released stock",
                                                kind="freezer")
    products.storage_location_update(location=quarantine, actor=chain.lab1, released_stock_location=released)
    vials = Vial.objects.filter(lot=releasable).count()
    assert vials > 1
    # the vials locked with their stores joined, the audit's read of the old side, one UPDATE (each in a
    # savepoint), the audit chain's lock, head and one INSERT of the entries
    with django_assert_num_queries(10) as captured:
        moved = vials_move_to_released_stock(lot=releasable, actor=chain.qc, reason="released")
    vial_reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith('SELECT "batches_vial"')]
    assert len(vial_reads) == 2 and 'JOIN "batches_storagelocation"' in vial_reads[0]
    assert len(moved) == vials and {v.storage_location_id for v in moved} == {released.pk}
    assert set(Vial.objects.filter(lot=releasable).values_list("storage_location", flat=True)) == {released.pk}
