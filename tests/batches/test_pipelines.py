"""The lot and vial pipelines are declared once (batches.lifecycle) and read by the services, admin and API."""

import pytest
from django.contrib import admin

from batches import lifecycle
from batches.models import CMLot, LotStatus, Vial, VialStatus
from batches.services.packaging import vial_destroy
from batches.services.vials import vials_set_status
from cmlims.audit import audited_update
from cmlims.exceptions import Conflict
from qc.services.hold import lot_hold, lot_unhold
from tests.support.builders import lot_at

pytestmark = pytest.mark.django_db


def test_lot_admin_actions_and_the_api_enum_are_the_pipelines_targets(chain, auth_client):
    # Actions are functions or method names (the document actions are named methods).
    names = [a if isinstance(a, str) else a.__name__ for a in admin.site._registry[CMLot].actions]
    assert [name for name in names if name.startswith("move_to_")] == [
        "move_to_freeze_drying", "move_to_packaged", "move_to_qc_complete"]
    schema = auth_client(chain.qc).get("/api/schema/?format=json").json()
    enum = schema["components"]["schemas"]["TransitionInputRequest"]["properties"]["to"]
    targets = ["freeze_drying", "packaged", "qc_complete", "rejected", "released", "recalled", "expired"]
    assert lifecycle.LOT_PIPELINE.targets(signed=None, automatic=None) == targets == list(lifecycle.RULES)
    assert targets == (enum.get("enum") or schema["components"]["schemas"][enum["$ref"].split("/")[-1]]["enum"])


def test_lot_detail_lists_the_transitions_the_pipeline_allows(chain, auth_client):
    lot = lot_at(chain, LotStatus.PACKAGED)
    body = auth_client(chain.qc).get(f"/api/v1/lots/{lot.lot_number}/").json()
    assert body["allowed_transitions"] == ["qc_complete", "rejected"]


def test_hold_and_unhold_are_rules_of_the_lot_pipeline(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    assert lifecycle.HOLD in lifecycle.LOT_PIPELINE.allowed_targets(LotStatus.PACKAGED, moves=False)
    assert lifecycle.HOLD not in lifecycle.LOT_PIPELINE.allowed_targets(LotStatus.REJECTED, moves=False)
    lot_hold(lot=lot, actor=chain.qc, reason="deviation DV-2")
    with pytest.raises(Conflict) as again:
        lot_hold(lot=lot, actor=chain.qc, reason="again")
    assert again.value.code == "hold_refused"
    assert [c["code"] for c in again.value.extra["conditions"]] == ["already_on_hold"]
    lot_unhold(lot=lot, actor=chain.qc, reason="closed")
    with pytest.raises(Conflict) as not_held:
        lot_unhold(lot=lot, actor=chain.qc, reason="again")
    assert not_held.value.code == "not_on_hold" and not_held.value.message == f"lot {lot.lot_number} is not on hold"
    audited_update(CMLot.objects.get(pk=lot.pk), actor=chain.qc, clean=False, status=LotStatus.REJECTED,
                   on_hold=True, hold_reason="set for the test")
    with pytest.raises(Conflict) as finished:
        lot_hold(lot=lot, actor=chain.qc, reason="x")
    assert [c["code"] for c in finished.value.extra["conditions"]] == ["wrong_status", "already_on_hold"]


def test_vial_status_moves_only_along_the_vial_pipeline(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    first, second, third = Vial.objects.filter(lot=lot).order_by("sequence")[:3]
    audited_update(second, actor=chain.lab1, status=VialStatus.SHIPPED)
    with pytest.raises(Conflict) as refused:
        vial_destroy(vial=second, actor=chain.lab1, reason="broken")
    assert refused.value.code == "wrong_status"
    assert refused.value.extra["vials"] == [{"serial": second.serial, "reason": "is shipped"}]
    with pytest.raises(Conflict) as refused:  # all or nothing, every refused vial named
        vials_set_status(vials=[first, second, third], to=VialStatus.DESTROYED, actor=chain.lab1, reason="x")
    assert [v["serial"] for v in refused.value.extra["vials"]] == [second.serial]
    assert Vial.objects.get(pk=first.pk).status == VialStatus.AVAILABLE
    vials_set_status(vials=[first, third], to=VialStatus.DESTROYED, actor=chain.lab1, reason="sampling",
                     destroyed_reason="sampling")
    assert set(Vial.objects.filter(pk__in=[first.pk, third.pk]).values_list("status", "destroyed_reason")) == {
        (VialStatus.DESTROYED, "sampling")}
    assert lifecycle.VIAL_PIPELINE.allowed_targets(VialStatus.AVAILABLE) == [VialStatus.ALLOCATED,
                                                                            VialStatus.DESTROYED]
