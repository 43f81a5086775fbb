"""Time comes from the server: a step's time is checked against the server's clock and the previous step, and
a late entry needs a reason and is marked in the audit trail (issue 13 item 5)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from batches.models import Harvest
from batches.services import cultures, lots
from cmlims.exceptions import InvalidInput
from cmlims.models import AuditEntry
from cmlims.verification import audit_chain_verify
from tests.support.builders import LATE, make_harvest, pool

pytestmark = pytest.mark.django_db
D = Decimal
NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False):
        yield


def _harvest(chain, *, ended: datetime, reason: str = "") -> Harvest:
    return cultures.harvest_record(culture=chain.culture, actor=chain.lab1, conditioning_started_at=ended - timedelta(
        hours=50), conditioning_ended_at=ended, volume_ml=D("300"), hold_temperature_c=D("4"), reason=reason)


def _entry(obj) -> AuditEntry:
    return AuditEntry.objects.get(object_type=obj._meta.label_lower, object_id=str(obj.pk), action="created")


@pytest.mark.req("RULE-TIME-1")
def test_a_step_is_not_before_the_previous_step_of_its_record(clock, chain, auth_client):
    lot = pool(chain, [(make_harvest(chain.lab1, chain.culture, days_ago=2), D("200"))], pooled_at=NOW - timedelta(
        hours=6))
    before_pooling = (NOW - timedelta(hours=7)).isoformat()
    response = auth_client(chain.lab1).post(f"/api/v1/lots/{lot.lot_number}/filtration/", {
        "filter_pore_size_um": "0.22", "filter_lot": "F-1", "integrity_test_method": "bubble_point",
        "integrity_test_limit_bar": "3.2", "integrity_test_measured_bar": "3.5", "volume_filtered_ml": "199",
        "filtered_at": before_pooling,
    }, format="json")
    assert response.status_code == 400, response.content
    assert "pooling" in response.json()["fields"]["filtered_at"][0]
    with pytest.raises(InvalidInput) as err:
        lots.lot_record_filtration(
            lot=lot, actor=chain.lab1, filter_pore_size_um=D("0.22"), filter_lot="F-1",
            integrity_test_method="bubble_point", integrity_test_limit_bar=D("3.2"),
            integrity_test_measured_bar=D("3.5"), volume_filtered_ml=D("199"), filtered_at=NOW + timedelta(hours=1))
    assert "future" in err.value.extra["fields"]["filtered_at"][0]


@pytest.mark.req("RULE-TIME-2", "P11-11.10e")
def test_a_late_entry_needs_a_reason_and_is_marked_in_the_audit_trail(clock, chain, auth_client):
    ended = NOW - timedelta(hours=30)
    response = auth_client(chain.lab1).post(f"/api/v1/cultures/{chain.culture.code}/harvests/", {
        "conditioning_started_at": (ended - timedelta(hours=50)).isoformat(),
        "conditioning_ended_at": ended.isoformat(), "volume_ml": "250.00", "hold_temperature_c": "4.0",
    }, format="json")
    assert response.status_code == 400 and "late entry" in response.json()["fields"]["reason"][0]
    harvest = _harvest(chain, ended=ended, reason="collected on Sunday, entered on Monday")
    entry = _entry(harvest)
    assert entry.late_entry and entry.occurred_at == ended and entry.reason.startswith("collected on Sunday")
    assert AuditEntry.objects.filter(late_entry=True, object_id=str(harvest.pk)).exists()  # queryable
    timely = _harvest(chain, ended=NOW - timedelta(hours=23))  # within 24 h: no reason needed, not marked
    assert not _entry(timely).late_entry and _entry(timely).occurred_at is None
    assert audit_chain_verify().ok  # the marker is covered by the chain hash


@pytest.mark.req("RULE-TIME-2")
def test_the_late_entry_threshold_is_a_setting(clock, chain, settings):
    settings.CMLIMS_LATE_ENTRY_HOURS = 2
    with pytest.raises(InvalidInput) as err:
        _harvest(chain, ended=NOW - timedelta(hours=3))
    assert "more than 2 h ago" in err.value.extra["fields"]["reason"][0]
    assert _entry(_harvest(chain, ended=NOW - timedelta(hours=3), reason=LATE)).late_entry


@pytest.mark.req("RULE-TIME-2")
def test_past_steps_can_be_entered_later_at_the_lab_s_pace(clock, chain):
    """Every step takes the time it happened: a whole lot entered days later, each step a marked late entry."""
    harvest = _harvest(chain, ended=NOW - timedelta(days=4), reason=LATE)
    lot = pool(chain, [(harvest, D("250"))], pooled_at=NOW - timedelta(days=3))
    lot = lots.lot_record_filtration(
        lot=lot, actor=chain.lab1, filter_pore_size_um=D("0.22"), filter_lot="F-1",
        integrity_test_method="bubble_point", integrity_test_limit_bar=D("3.2"), integrity_test_measured_bar=D("3.5"),
        volume_filtered_ml=D("249"), filtered_at=NOW - timedelta(days=3) + timedelta(hours=1), reason=LATE)
    assert lot.pooled_at == NOW - timedelta(days=3) and lot.created_at == NOW
    late = AuditEntry.objects.filter(late_entry=True, object_type="batches.cmlot", object_id=str(lot.pk))
    assert [e.occurred_at for e in late] == [NOW - timedelta(days=3), NOW - timedelta(days=3, hours=-1)]


@pytest.mark.req("RULE-1")
def test_the_hold_time_limit_comes_from_the_product_not_the_harvest(clock, chain, auth_client):
    from batches.services import products
    from tests.support.builders import product_limits_approved

    with pytest.raises(InvalidInput) as err:
        cultures.harvest_record(culture=chain.culture, actor=chain.lab1, conditioning_started_at=NOW - timedelta(
            hours=60), conditioning_ended_at=NOW - timedelta(hours=10), volume_ml=D("300"),
            hold_temperature_c=D("4"), max_hold_hours=D("500"))
    assert "max_hold_hours" in err.value.extra["fields"]  # never typed per harvest
    product_limits_approved(products.product_update(product=chain.product, actor=chain.lab1, max_hold_hours=D("8")))
    harvest = _harvest(chain, ended=NOW - timedelta(hours=10))
    assert harvest.max_hold_hours == D("8")  # the product's limit, kept with the record
    response = auth_client(chain.lab1).post("/api/v1/lots/", {
        "product": chain.product.pk, "contributions": [{"harvest": harvest.pk, "volume_ml": "100"}]}, format="json")
    assert response.status_code == 400
    assert "longer than the product's 8.00 h limit" in response.json()["fields"]["contributions[0].harvest"][0]
    product_limits_approved(products.product_update(product=chain.product, actor=chain.lab1, max_hold_hours=D("12")))
    assert pool(chain, [(harvest, D("100"))], pooled_at=NOW).pk


@pytest.mark.req("RULE-TIME-1", "RULE-TIME-2")
def test_closing_a_culture_is_not_before_its_start_nor_in_the_future_and_marks_a_late_entry(clock, chain):
    culture = chain.culture
    for when, words in ((culture.started_at - timedelta(hours=1), "start"), (NOW + timedelta(hours=1), "future")):
        with pytest.raises(InvalidInput) as err:
            cultures.culture_close(culture=culture, actor=chain.lab1, reason="contaminated", closed_at=when)
        assert words in err.value.extra["fields"]["closed_at"][0]
    closed = cultures.culture_close(culture=culture, actor=chain.lab1, reason="contaminated, found in the log",
                                    closed_at=NOW - timedelta(hours=30))
    entry = AuditEntry.objects.filter(object_type="batches.culture", object_id=str(closed.pk)).latest("sequence")
    assert entry.late_entry and entry.occurred_at == NOW - timedelta(hours=30)
