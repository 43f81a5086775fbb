"""The soak's starting data, made through the services (tests/support/builders.py) in the soak database:
released lots with vials to allocate, lots at qc_complete to enter results on, and one account per user."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field

# How many locust users of each kind; together the 20 of `make soak` (the roles' accounts are made per user).
PERSONAS = {"reader": 6, "analyst": 5, "approver": 4, "coordinator": 5}


@dataclass
class Plan:
    """What the locust users need to know: accounts, lots and tests (written as JSON for the locustfile)."""

    accounts: dict[str, list[str]] = field(default_factory=dict)
    password: str = ""
    released_lots: list[str] = field(default_factory=list)
    open_lots: list[str] = field(default_factory=list)
    tests: dict[str, list[str]] = field(default_factory=dict)  # test -> [value, unit] (passing)
    product: int = 0
    consignee: int = 0
    vials_available: int = 0


def dataset_make(*, vials_per_lot: int = 130, donors_per_lot: int = 3) -> Plan:
    from batches.models import LotStatus, Vial, VialStatus
    from cmlims import roles
    from tests.support.builders import PASSING, PASSWORD, make_user, make_world

    role_of = {"reader": roles.QC_OFFICER, "analyst": roles.LAB_STAFF, "approver": roles.QC_OFFICER,
               "coordinator": roles.SHIPPING_COORDINATOR}
    world = make_world(coordinator=make_user("soak-ship-0", roles.SHIPPING_COORDINATOR))
    # A lot's bulk fills about 40 vials per donor's harvest: three donors give enough vials for 60 s of allocations.
    released = [world.lot(vials=vials_per_lot, donors=tuple(world.donor() for _ in range(donors_per_lot)))
                for _ in range(2)]
    open_lots = [world.lot(vials=10, status=LotStatus.QC_COMPLETE) for _ in range(2)]
    plan = Plan(password=PASSWORD, released_lots=[lot.lot_number for lot in released],
                open_lots=[lot.lot_number for lot in open_lots], product=world.product.pk,
                consignee=world.consignee.pk,
                tests={test: list(value) for test, value in PASSING.items() if test != "Sterility"})
    for persona, count in PERSONAS.items():
        # Staff accounts, as on a site: the same people work in the admin (tests/reliability/test_database_restart.py).
        plan.accounts[persona] = [make_user(f"soak-{persona}-{i}", role_of[persona], is_staff=True).username
                                  for i in range(1, count + 1)]
    plan.vials_available = Vial.objects.filter(status=VialStatus.AVAILABLE, lot__in=released).count()
    return plan


if __name__ == "__main__":
    import django

    django.setup()
    made = dataset_make()
    with open(sys.argv[1], "w") as out:
        json.dump(asdict(made), out, indent=1)
    print(f"soak data: {len(made.released_lots)} released lots ({made.vials_available} vials), "
          f"{len(made.open_lots)} lots open for results, {sum(map(len, made.accounts.values()))} accounts")
