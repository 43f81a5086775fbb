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
            lambda: services.shipment_allocate_scans(shipment=first, scans=serials, actor=world.coordinator),
            lambda: services.shipment_allocate_scans(shipment=second, scans=serials, actor=other),
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
        lambda: services.shipment_allocate_count(shipment=first, count=3, actor=world.coordinator),
        lambda: services.shipment_allocate_count(shipment=second, count=3, actor=other),
    )
    assert all(isinstance(o, list) for o in outcomes), outcomes
    taken = [a.vial_id for rows in outcomes for a in rows]
    assert len(taken) == len(set(taken)) == 6
    assert set(Vial.objects.filter(lot=lot).values_list("status", flat=True)) == {VialStatus.ALLOCATED}


def test_packing_while_allocating_into_the_same_shipment_never_deadlocks(require_postgres, world):
    """Both lock the lot, vials and the shipment (the order of batches.locks); taken the other way round,
    packing (shipment → vials → lot) and allocating (lot → vials → shipment) deadlock within a few rounds."""
    rounds = 12
    lot = world.lot(vials=3 * rounds)
    vials = list(lot.vials.order_by("sequence"))
    for n in range(rounds):
        shipment = world.shipment()
        first, late = [v.serial for v in vials[3 * n:3 * n + 2]], [vials[3 * n + 2].serial]
        services.shipment_allocate_scans(shipment=shipment, scans=first, actor=world.coordinator)
        packed, allocated = race(
            lambda: services.shipment_pack(shipment=shipment, actor=world.coordinator,
                                           shipper_type="insulated_box", coolant="gel_packs"),
            lambda: services.shipment_allocate_scans(shipment=shipment, scans=late, actor=world.coordinator),
        )
        assert not isinstance(packed, BaseException), packed  # no DeadlockDetected: packing always succeeds
        assert isinstance(allocated, list | Conflict), allocated
        shipment.refresh_from_db()
        assert shipment.status == "packed"
        live = set(ShipmentVial.objects.filter(shipment=shipment, released_at__isnull=True)
                   .values_list("vial__serial", flat=True))
        if isinstance(allocated, list):  # allocated first: packed with three vials
            assert live == {*first, *late}
            assert shipment.custody_events.get().notes.startswith("3 vial(s)")
        else:  # packed first: the late vial was refused because the shipment is packed, and stays available
            assert allocated.code == "invalid_state"
            assert live == set(first)
            assert shipment.custody_events.get().notes.startswith("2 vial(s)")
            assert Vial.objects.get(serial=late[0]).status == VialStatus.AVAILABLE
        assert set(Vial.objects.filter(serial__in=live).values_list("status", flat=True)) == {VialStatus.ALLOCATED}


def test_a_hold_and_an_allocation_of_the_same_lot_take_turns(require_postgres, world, make_user):
    """The allocation locks the lot before it checks rule 4: either it allocated before the hold, or it sees
    the hold and allocates nothing; never a held lot's vial allocated after the hold."""
    from qc.services.hold import lot_hold, lot_unhold

    qc = make_user("qc1", roles.QC_OFFICER)
    lot = world.lot(vials=10)
    serials = [v.serial for v in lot.vials.order_by("sequence")]
    for n in range(5):
        shipment = world.shipment()
        allocated, held = race(
            lambda: services.shipment_allocate_scans(shipment=shipment, scans=serials[2 * n:2 * n + 2],
                                                     actor=world.coordinator),
            lambda: lot_hold(lot=lot, actor=qc, reason="deviation DV-9"),
        )
        assert not isinstance(held, BaseException), held
        statuses = set(Vial.objects.filter(serial__in=serials[2 * n:2 * n + 2]).values_list("status", flat=True))
        if isinstance(allocated, list):
            assert statuses == {VialStatus.ALLOCATED}
        else:
            assert isinstance(allocated, Conflict) and allocated.code == "vials_refused", allocated
            assert all("hold" in v["reason"] for v in allocated.extra["vials"]), allocated.extra
            assert statuses == {VialStatus.AVAILABLE}
        lot_unhold(lot=lot, actor=qc, reason="deviation closed")


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
