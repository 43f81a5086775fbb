"""Document fixtures; the builders are in tests/support/builders.py."""

import pytest

from batches.models import LotStatus
from cmlims import roles
from tests.support.builders import lot_at, lot_release


@pytest.fixture
def shipper(make_user):
    return make_user("ship1", roles.SHIPPING_COORDINATOR)


@pytest.fixture
def packaged_lot(chain):
    return lot_at(chain, LotStatus.PACKAGED, vials=12)


@pytest.fixture
def released_lot(chain, releasable):
    return lot_release(releasable, officer=chain.qc)


from tests.support.printers import office_printer, zebra  # noqa: E402, F401 - the loopback printer fixtures
