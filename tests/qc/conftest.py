"""QC builders on top of the manufacturing builders: a signed specification in force before the lots were
pooled, results entered by lab staff and approved by a second QC officer. Real services throughout."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from batches.models import LotStatus
from cmlims import roles
from qc.models import SpecItem
from qc.services.results import result_approve, result_enter
from qc.services.specs import specification_approve, specification_create
from tests.batches import conftest as manufacturing
from tests.conftest import PASSWORD

# The manufacturing builders' fixtures, shared here (a conftest's fixtures only reach its own folder).
chain, lab1, lab2, qc1 = manufacturing.chain, manufacturing.lab1, manufacturing.lab2, manufacturing.qc1
lot_at, make_donor, t = manufacturing.lot_at, manufacturing.make_donor, manufacturing.t

D = Decimal

# A small panel: one of each limit kind, one non-mandatory item.
SMALL_PANEL = [
    {"test": "pH (reconstituted)", "method": "potentiometric", "unit": "pH", "limit_kind": "range",
     "lower": D("7.0"), "upper": D("8.0")},
    {"test": "Residual moisture", "method": "Karl Fischer", "unit": "% w/w", "limit_kind": "max", "upper": D("3.0")},
    {"test": "Bacterial endotoxin", "method": "LAL", "unit": "EU/mL", "limit_kind": "max", "upper": D("12.5"),
     "upper_inclusive": False},
    {"test": "VEGF", "method": "ELISA", "unit": "pg/mL", "limit_kind": "min", "lower": D("500")},
    {"test": "Sterility", "method": "USP <71>", "limit_kind": "qualitative", "allowed_values": ["no growth", "growth"],
     "passing_values": ["no growth"]},
    {"test": "TGF-beta1", "method": "ELISA", "unit": "pg/mL", "limit_kind": "min", "lower": D("200"),
     "mandatory": False},
]
PASSING = {"pH (reconstituted)": ("7.4", "pH"), "Residual moisture": ("1.2", "% w/w"),
           "Bacterial endotoxin": ("0.5", "EU/mL"), "VEGF": ("0.711", "ng/mL"), "Sterility": ("no growth", ""),
           "TGF-beta1": ("350", "pg/mL")}


@pytest.fixture
def qc2(make_user):
    return make_user("qc2", roles.QC_OFFICER)


@pytest.fixture
def robot(make_user):
    return make_user("robot", roles.INTEGRATION)


def sign_spec(officer, product, items=None, effective_days_ago=30, title="CM release"):
    spec = specification_create(product=product, title=title, actor=officer, items=items or SMALL_PANEL)
    return specification_approve(specification=spec, actor=officer, username=officer.username, password=PASSWORD,
                                 effective_from=timezone.now() - timedelta(days=effective_days_ago))


@pytest.fixture
def spec(chain, qc2):
    return sign_spec(qc2, chain.product)


def item(spec, test) -> SpecItem:
    return spec.items.get(test=test)


def enter(lot, test, value, unit="", *, analyst, actor=None, tested_at=None, **extra):
    return result_enter(lot=lot, test=test, value=value, unit=unit, analyst=analyst, actor=actor or analyst,
                        tested_at=tested_at or timezone.now() - timedelta(hours=2), instrument="INS-1", **extra)


def approve(result, officer):
    return result_approve(result=result, actor=officer, username=officer.username, password=PASSWORD)


def pass_all(lot, *, analyst, approver, skip=()):
    """Enter a passing result for every panel item (except ``skip``) and approve each."""
    out = {}
    for test, (value, unit) in PASSING.items():
        if test in skip:
            continue
        out[test] = approve(enter(lot, test, value, unit, analyst=analyst), approver)
    return out


@pytest.fixture
def packaged(chain, spec):
    return lot_at(chain, LotStatus.PACKAGED)


@pytest.fixture
def releasable(chain, spec, qc2):
    """A qc_complete lot meeting every release condition for qc1 (results by lab1, approved by qc2)."""
    from batches.services.lots import lot_transition

    lot = lot_at(chain, LotStatus.PACKAGED)
    pass_all(lot, analyst=chain.lab1, approver=qc2)
    return lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc)
