"""Manufacturing and QC builders shared from their test folders (a conftest's fixtures only reach its folder)."""

import pytest

from batches.models import LotStatus
from cmlims import roles
from cmlims.audit import chain_head
from tests.batches import conftest as manufacturing
from tests.conftest import PASSWORD
from tests.qc import conftest as qc_builders

chain, lab1, lab2, qc1 = manufacturing.chain, manufacturing.lab1, manufacturing.lab2, manufacturing.qc1
qc2, spec, releasable = qc_builders.qc2, qc_builders.spec, qc_builders.releasable


@pytest.fixture
def shipper(make_user):
    return make_user("ship1", roles.SHIPPING_COORDINATOR)


@pytest.fixture
def packaged_lot(chain):
    return manufacturing.lot_at(chain, LotStatus.PACKAGED, vials=12)


@pytest.fixture
def released_lot(chain, releasable):
    from qc.services.signoff import lot_sign_off

    lot_sign_off(lot=releasable, to=LotStatus.RELEASED, actor=chain.qc, username=chain.qc.username,
                 password=PASSWORD, audit_reviewed_through=chain_head().sequence)
    return type(releasable).objects.select_related("product").get(pk=releasable.pk)
