"""QC fixtures; the builders are in tests/support/builders.py."""

import pytest

from batches.models import LotStatus
from tests.support.builders import lot_at


@pytest.fixture
def packaged(chain, spec):
    return lot_at(chain, LotStatus.PACKAGED)
