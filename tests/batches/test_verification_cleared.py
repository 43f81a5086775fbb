"""Issue 13 item 2: a change to a verified record's content clears its verification (211.188(b)), with an
audit entry saying so, and every rule that needs the step verified sees it unverified until a second person
verifies it again."""

from decimal import Decimal as D

import pytest

from batches.models import CellBank, CMLot, Culture, Harvest, LotStatus, LyophilisationRun, Passage
from batches.services import cultures, drying, lots, records, sources
from cmlims.exceptions import Conflict
from cmlims.models import AuditEntry
from tests.support.builders import LATE, lot_at, make_conditioning_culture, process, t

pytestmark = pytest.mark.django_db


def _clearing_entry(record) -> AuditEntry:
    return AuditEntry.objects.filter(object_type=f"batches.{type(record)._meta.model_name}",
                                     object_id=str(record.pk), changes__has_key="verified_by_id").latest("sequence")


@pytest.mark.req("211-188b", "INTEG-SIGN-VERIFY-CLEARED", "P11-11.10e")
def test_patching_a_verified_harvest_clears_its_verification_and_blocks_the_next_step(chain, auth_client):
    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    harvest = Harvest.objects.get(contributions__lot=lot)
    assert harvest.verified_by_id == chain.lab2.pk

    # Today's hole (reproduced through the API): a new volume, and the verification stayed.
    response = auth_client(chain.lab1).patch(f"/api/v1/harvests/{harvest.pk}/", {"volume_ml": "450"}, format="json")
    assert response.status_code == 200, response.content
    harvest = Harvest.objects.get(pk=harvest.pk)
    assert harvest.volume_ml == D("450") and harvest.verified_by_id is None and harvest.verified_at is None
    entry = _clearing_entry(harvest)
    assert entry.changes["verified_by_id"] == [chain.lab2.pk, None]
    assert entry.reason.startswith("verification cleared: volume_ml changed after it was verified")
    assert entry.user_id == chain.lab1.pk

    # The freeze-drying guard sees a pooled harvest that is not verified any more.
    with pytest.raises(Conflict) as refused:
        drying.lyophilisation_run_start(lot=lot, actor=chain.lab1, run_number="LYO-X", dryer="LYO-A",
                                        recipe="CM-1ML", recipe_version="3", vials_loaded=10,
                                        fill_volume_ml=D("0.9"), performed_at=t(1, 5), started_at=t(1, 5))
    assert "verification_missing" in {c["code"] for c in refused.value.extra["conditions"]}

    # A second person verifies again: the step goes ahead.
    assert auth_client(chain.lab2).post(f"/api/v1/harvests/{harvest.pk}/verify/", {}, format="json").status_code == 200
    drying.lyophilisation_run_start(lot=lot, actor=chain.lab1, run_number="LYO-X", dryer="LYO-A", recipe="CM-1ML",
                                    recipe_version="3", vials_loaded=10, fill_volume_ml=D("0.9"),
                                    performed_at=t(1, 5), started_at=t(1, 5))
    assert CMLot.objects.get(pk=lot.pk).status == LotStatus.FREEZE_DRYING


@pytest.mark.req("211-188b", "INTEG-SIGN-VERIFY-CLEARED")
def test_every_verified_record_loses_its_verification_when_its_content_changes(chain):
    lab1, lab2 = chain.lab1, chain.lab2
    bank = records.step_verify(record=chain.bank, actor=lab2)
    culture = records.step_verify(record=chain.culture, actor=lab2)
    active = cultures.culture_create(actor=lab1, product=chain.product, bank=chain.bank, code="CU-0002",
                                     started_at=t(10), vessel="T175", medium_lot="MED-1", reason=LATE)
    passage = cultures.passage_record(culture=active, actor=lab1, passage_number=3, seeded_at=t(9),
                                      harvested_at=t(6), cells_seeded=5_000_000, cells_harvested=40_000_000,
                                      viability_percent=D("94"), confluence_percent=D("85"), reason=LATE)
    passage = records.step_verify(record=passage, actor=lab2)
    run = LyophilisationRun.objects.get(lot=lot_at(chain, LotStatus.FREEZE_DRYING))
    assert run.verified_by_id == lab2.pk

    sources.cell_bank_update(bank=bank, actor=lab1, cells_per_vial=2_000_000)
    cultures.culture_update(culture=culture, actor=lab1, vessel="CellSTACK 10")
    cultures.passage_update(passage=passage, actor=lab1, cells_harvested=30_000_000)
    drying.lyophilisation_run_update(run=run, actor=lab1, dryer="LYO-B")
    for model, record, field in ((CellBank, bank, "cells_per_vial"), (Culture, culture, "vessel"),
                                 (Passage, passage, "cells_harvested, cumulative_population_doublings, "
                                                    "population_doublings"),
                                 (LyophilisationRun, run, "dryer")):
        stored = model.objects.get(pk=record.pk)
        assert stored.verified_by_id is None, model.__name__
        assert _clearing_entry(stored).reason == f"verification cleared: {field} changed after it was verified"


@pytest.mark.req("211-188b", "INTEG-SIGN-VERIFY-CLEARED")
def test_a_lot_edit_clears_only_the_verification_of_the_step_it_changes(chain):
    lot = lot_at(chain, LotStatus.POOLED)
    lot = lots.lot_record_filtration(
        lot=lot, actor=chain.lab1, filter_pore_size_um=D("0.22"), filter_lot="FLT-9",
        integrity_test_method="bubble_point", integrity_test_limit_bar=D("3.2"),
        integrity_test_measured_bar=D("3.6"), volume_filtered_ml=lot.volume_in_ml, filtered_at=t(1, 2))
    for step in ("pooling", "filtration"):
        lot = lots.lot_step_verify(lot=lot, step=step, actor=chain.lab2)
    lots.lot_update(lot=lot, actor=chain.lab1, filter_lot="FLT-10")
    lot = CMLot.objects.get(pk=lot.pk)
    assert lot.filtration_verified_by_id is None and lot.filtration_verified_at is None
    assert lot.pool_verified_by_id == chain.lab2.pk, "pooling was not changed: its verification stands"

    # A change that changes nothing clears nothing.
    lot = lots.lot_step_verify(lot=lot, step="filtration", actor=chain.lab2)
    lots.lot_update(lot=lot, actor=chain.lab1, filter_lot="FLT-10")
    assert CMLot.objects.get(pk=lot.pk).filtration_verified_by_id == chain.lab2.pk


def test_a_harvest_added_to_a_verified_pool_clears_the_pooling_verification(chain):
    lot = lot_at(chain, LotStatus.POOLED, volume=D("200"))
    lot = lots.lot_step_verify(lot=lot, step="pooling", actor=chain.lab2)
    extra = make_conditioning_culture(chain.lab1, chain.product, chain.bank, code="CU-0009")
    harvest = cultures.harvest_record(culture=extra, actor=chain.lab1, conditioning_started_at=t(4),
                                      conditioning_ended_at=t(2), volume_ml=D("100"), hold_temperature_c=D("4"),
                                      reason=LATE)
    lots.lot_contribution_add(lot=lot, harvest_id=harvest.pk, volume_ml=D("50"), actor=chain.lab1)
    lot = CMLot.objects.get(pk=lot.pk)
    assert lot.volume_in_ml == D("250") and lot.pool_verified_by_id is None
