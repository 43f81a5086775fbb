"""Shipping fixtures: a coordinator and a world of released lots (tests/support/builders.py, through the services)."""

import pytest

from cmlims import roles
from tests.support.builders import World, make_world


@pytest.fixture
def coordinator(make_user):
    return make_user("ship1", roles.SHIPPING_COORDINATOR, first_name="Sam", last_name="Shipper", is_staff=True)


@pytest.fixture
def world(db, coordinator) -> World:
    return make_world(coordinator=coordinator)
from tests.support.printers import zebra  # noqa: E402, F401 - the loopback Zebra (shipping labels printed on it)
