"""Rule 10 on PostgreSQL with two real connections: two coordinators allocating at the same moment."""

import pytest

from batches.models import Vial, VialStatus
from batches.shipping import services
from batches.shipping.models import ShipmentVial
from cmlims import roles
from cmlims.exceptions import Conflict
from tests.support.races import race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.req("RULE-10")
def test_two_coordinators_allocating_the_same_vial_exactly_one_succeeds(require_postgres, world, make_user):
    other = make_user("ship2", roles.SHIPPING_COORDINATOR)
    lot = world.lot(vials=3)
    first, second = world.shipment(), world.shipment()
    serials = [v.serial for v in lot.vials.order_by("sequence")]
    for _ in range(5):  # several rounds: the outcome must never depend on who is faster
        outcomes = race(
            lambda: services.shipment_allocate_scans(shipment=first.pk, scans=serials, actor=world.coordinator),
            lambda: services.shipment_allocate_scans(shipment=second.pk, scans=serials, actor=other),
        )
        winners = [o for o in outcomes if isinstance(o, list)]
        losers = [o for o in outcomes if isinstance(o, Conflict)]
        assert len(winners) == 1 and len(losers) == 1, outcomes
        assert {v["serial"] for v in losers[0].extra["vials"]} == set(serials)
        assert all("allocated" in v["reason"] for v in losers[0].extra["vials"])
        assert ShipmentVial.objects.filter(vial__lot=lot, released_at__isnull=True).count() == 3
        assert set(Vial.objects.filter(lot=lot).values_list("status", flat=True)) == {VialStatus.ALLOCATED}
        winner = first if ShipmentVial.objects.filter(shipment=first, released_at__isnull=True).exists() else second
        services.shipment_release_vials(shipment=winner, actor=world.coordinator, reason="next round")


def test_two_coordinators_by_count_get_different_vials(require_postgres, world, make_user):
    other = make_user("ship2", roles.SHIPPING_COORDINATOR)
    lot = world.lot(vials=6)
    first, second = world.shipment(), world.shipment()
    outcomes = race(
        lambda: services.shipment_allocate_count(shipment=first.pk, count=3, actor=world.coordinator),
        lambda: services.shipment_allocate_count(shipment=second.pk, count=3, actor=other),
    )
    assert all(isinstance(o, list) for o in outcomes), outcomes
    taken = [a.vial_id for rows in outcomes for a in rows]
    assert len(taken) == len(set(taken)) == 6
    assert set(Vial.objects.filter(lot=lot).values_list("status", flat=True)) == {VialStatus.ALLOCATED}


@pytest.mark.req("RULE-10", "RULE-4")
def test_two_coordinators_allocating_the_same_vial_over_the_api(require_postgres, world, make_user, auth_client):
    lot = world.lot(vials=2)
    first, second = world.shipment(), world.shipment()
    serial = lot.vials.get(sequence=1).serial
    # Each coordinator with a real token obtained over the API, each request in its own thread.
    clients = [auth_client(world.coordinator), auth_client(make_user("ship2", roles.SHIPPING_COORDINATOR))]
    responses = race(*(
        (lambda c=client, s=shipment: c.post(f"/api/v1/shipments/{s.pk}/allocate/", {"vials": [serial]},
                                             format="json"))
        for client, shipment in zip(clients, (first, second), strict=True)
    ))
    assert sorted(r.status_code for r in responses) == [200, 409], [r.content for r in responses]
    winner = next(r for r in responses if r.status_code == 200)
    loser = next(r for r in responses if r.status_code == 409)
    assert [v["serial"] for v in winner.json()["vials"]] == [serial]
    assert loser.json()["code"] == "vials_refused", loser.content
    assert [(v["serial"], "allocated" in v["reason"]) for v in loser.json()["vials"]] == [(serial, True)]
    held = ShipmentVial.objects.filter(vial__serial=serial, released_at__isnull=True)
    assert held.count() == 1 and held.get().shipment_id == winner.json()["id"]
    assert Vial.objects.get(serial=serial).status == VialStatus.ALLOCATED
