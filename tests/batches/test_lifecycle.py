"""Rule 1 and the lot lifecycle through the one transition service."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from batches import lifecycle
from batches.models import CMLot, LotStatus, Vial
from batches.services import lots
from cmlims.audit import audited_update
from cmlims.exceptions import Conflict, InvalidInput, PermissionDenied
from cmlims.models import AuditEntry
from tests.support.builders import freeze_dry, lot_at, make_harvest, package, pool, process

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-11.10f", "211-188b", "FEAT-LOT-RECORD")
def test_full_path_to_packaged_records_who_did_each_step(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    lot.refresh_from_db()
    assert lot.status == LotStatus.PACKAGED
    assert lot.pooled_by == chain.lab1 and lot.pool_verified_by == chain.lab2
    assert lot.lot_number.startswith("CM") and len(lot.lot_number) == 9
    assert lot.expiry is not None
    assert lot.yield_percent == Decimal("97.50")  # 39 mL at 10x from 400 mL
    assert Vial.objects.filter(lot=lot).count() == 38
    transitions = AuditEntry.objects.filter(object_type="batches.cmlot", object_id=str(lot.pk), action="transitioned")
    assert [e.changes["status"][1] for e in transitions] == ["freeze_drying", "packaged"]
    assert transitions.last().username == "lab1"
    assert lot.expiry == lot.packaging_run.ended_at.date() + timedelta(days=lot.product.shelf_life_days)


@pytest.mark.req("P11-11.10f")
def test_wrong_order_lists_every_unmet_condition(chain):
    harvest = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("300"))
    lot = pool(chain, [(harvest, Decimal("300"))])
    with pytest.raises(Conflict) as err:
        lots.lot_transition(lot=lot, to=LotStatus.FREEZE_DRYING, actor=chain.lab1)
    codes = {c["code"] for c in err.value.extra["conditions"]}
    assert {"filtration_missing", "concentration_missing", "dryer_not_loaded", "verification_missing"} <= codes
    with pytest.raises(Conflict) as err:
        lots.lot_transition(lot=lot, to=LotStatus.PACKAGED, actor=chain.lab1)
    codes = {c["code"] for c in err.value.extra["conditions"]}
    assert {"wrong_status", "drying_incomplete", "packaging_missing"} <= codes
    lot.refresh_from_db()
    assert lot.status == LotStatus.POOLED


@pytest.mark.parametrize("target", [LotStatus.RELEASED, LotStatus.REJECTED, LotStatus.RECALLED])
@pytest.mark.req("A11-15")
def test_signed_statuses_need_a_signature(chain, target):
    lot = lot_at(chain, LotStatus.PACKAGED)
    with pytest.raises(Conflict) as err:
        lots.lot_transition(lot=lot, to=target, actor=chain.qc)
    assert err.value.code == "signature_required"
    lot.refresh_from_db()
    assert lot.status == LotStatus.PACKAGED


@pytest.mark.req("P11-11.10g")
def test_wrong_role_is_refused(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    with pytest.raises(PermissionDenied):
        lots.lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.lab1)
    harvest = make_harvest(chain.lab1, chain.culture)
    with pytest.raises(PermissionDenied):
        pool(type(chain)(**{**chain.__dict__, "lab1": chain.qc}), [(harvest, Decimal("10"))])


@pytest.mark.req("README-HOLD")
def test_held_lot_moves_nowhere(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)


    with transaction.atomic():  # hold is QC's service; here the flag is set through the audit API directly
        audited_update(CMLot.objects.get(pk=lot.pk), actor=chain.qc, on_hold=True, hold_reason="deviation DV-1")
    with pytest.raises(Conflict) as err:
        lots.lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc)
    assert "on_hold" in {c["code"] for c in err.value.extra["conditions"]}


def test_registered_guard_adds_conditions(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)

    def no_results(lot, actor):
        return [{"code": "results_missing", "detail": "mandatory items without approved result"}]

    lifecycle.register_guard(LotStatus.QC_COMPLETE, no_results)
    try:
        with pytest.raises(Conflict) as err:
            lots.lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=chain.qc)
        assert no_results(lot, None)[0] in err.value.extra["conditions"]
    finally:
        lifecycle.LOT_PIPELINE.unregister_guard(LotStatus.QC_COMPLETE, no_results)
    lot.refresh_from_db()
    assert lot.status == LotStatus.PACKAGED


@pytest.mark.req("RULE-1")
def test_packaging_never_exceeds_vials_loaded(chain):
    harvest = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("400"), verifier=chain.lab2)
    lot = process(chain, pool(chain, [(harvest, Decimal("400"))]))
    freeze_dry(chain, lot, vials=30)
    with pytest.raises(InvalidInput) as err:
        package(chain, lot, vials=29, rejected=2)
    assert "vials_packaged" in err.value.extra["fields"]
    assert not Vial.objects.filter(lot=lot).exists()


def test_unknown_target_names_the_field(chain):
    lot = lot_at(chain, LotStatus.POOLED)
    with pytest.raises(InvalidInput) as err:
        lots.lot_transition(lot=lot, to="shipped", actor=chain.lab1)
    assert "to" in err.value.extra["fields"]
