"""Builders for the manufacturing chain. Every record is written through the real services."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from batches.models import CellSource, LotStatus, LyophilisationPhase
from batches.services import cultures, drying, lots, packaging, products, records, sources
from cmlims import roles

D = Decimal


@dataclass
class Chain:
    lab1: object
    lab2: object
    qc: object
    product: object
    location: object
    source: object
    bank: object
    culture: object
    counter: int = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter


@pytest.fixture
def lab1(make_user):
    return make_user("lab1", roles.LAB_STAFF, is_staff=True)


@pytest.fixture
def lab2(make_user):
    return make_user("lab2", roles.LAB_STAFF, is_staff=True)


@pytest.fixture
def qc1(make_user):
    return make_user("qc1", roles.QC_OFFICER, is_staff=True)


def t(days_ago: float, hours: float = 0):
    """A time ``days_ago`` days before now, plus ``hours``."""
    return timezone.now() - timedelta(days=days_ago) + timedelta(hours=hours)


def make_product(actor, *, name="MSC-CM lyophilisate 1 mL", gtin="09506000134352", **extra):
    values = {
        "name": name, "gtin": gtin, "shelf_life_days": 365, "storage_temperature_min_c": D("-25"),
        "storage_temperature_max_c": D("-15"), "transport_temperature_min_c": D("-25"),
        "transport_temperature_max_c": D("8"), "transport_excursion_allowed_minutes": 30, "max_passage": 5,
        "max_population_doublings": D("20"), "conditioning_min_hours": D("48"), "conditioning_max_hours": D("72"),
        "nominal_fill_volume_ml": D("1.0"), "requires_second_person_verification": True,
    }
    values.update(extra)
    return products.product_create(actor=actor, **values)


def make_donor(actor, code="DN-0001", eligible=True):
    today = timezone.localdate()  # the site's date, as the services see it (not the OS zone's date.today())
    return sources.cell_source_create(
        actor=actor, code=code, tissue=CellSource.Tissue.UMBILICAL_CORD, collection_date=today - timedelta(90),
        consent_status="given", consent_recorded_on=today - timedelta(91),
        eligibility_status="eligible" if eligible else "pending",
        eligibility_determined_on=today - timedelta(80) if eligible else None,
    )


def make_bank(actor, source, code="WCB-0001"):
    return sources.cell_bank_create(
        actor=actor, code=code, kind="master", source=source, passage_at_freeze=2,
        frozen_on=timezone.localdate() - timedelta(60), vials_frozen=50, vials_on_hand=50, cells_per_vial=5_000_000,
        cd73_percent=D("99.1"), cd90_percent=D("98.7"), cd105_percent=D("97.5"), cd34_percent=D("0.4"),
        cd45_percent=D("0.3"), cd14_percent=D("0.2"), cd19_percent=D("0.1"), hla_dr_percent=D("0.5"),
    )


def make_conditioning_culture(chain_or_actor, product, bank, code="CU-0001", started_days_ago=20):
    actor = chain_or_actor
    culture = cultures.culture_create(actor=actor, product=product, bank=bank, code=code,
                                      started_at=t(started_days_ago), vessel="CellSTACK 5", medium_lot="MED-1")
    cultures.passage_record(culture=culture, actor=actor, passage_number=3, seeded_at=t(started_days_ago - 1),
                            harvested_at=t(started_days_ago - 5), cells_seeded=5_000_000,
                            cells_harvested=40_000_000, viability_percent=D("94.5"), confluence_percent=D("85"))
    return cultures.culture_start_conditioning(culture=culture, actor=actor, confluence_percent=D("85"),
                                               started_at=t(started_days_ago - 6))


def make_harvest(actor, culture, *, days_ago=3, volume_ml=D("500"), verifier=None):
    harvest = cultures.harvest_record(
        culture=culture, actor=actor, conditioning_started_at=t(days_ago + 2),
        conditioning_ended_at=t(days_ago), volume_ml=volume_ml, viability_percent=D("92"),
        hold_temperature_c=D("4"),
    )
    if verifier is not None:
        harvest = records.step_verify(record=harvest, actor=verifier)
    return harvest


@pytest.fixture
def chain(lab1, lab2, qc1):
    product = make_product(lab1)
    location = products.storage_location_create(actor=lab1, code="FRZ-01", name="Freezer 1", kind="freezer",
                                                temperature_min_c=D("-25"), temperature_max_c=D("-15"))
    source = make_donor(lab1)
    bank = make_bank(lab1, source)
    culture = make_conditioning_culture(lab1, product, bank)
    return Chain(lab1=lab1, lab2=lab2, qc=qc1, product=product, location=location, source=source, bank=bank,
                 culture=culture)


def pool(chain, harvests_and_volumes, pooled_at=None):
    return lots.lot_pool(
        product=chain.product, actor=chain.lab1, pooled_at=pooled_at or t(1),
        contributions=[lots.Contribution(harvest_id=h.pk, volume_ml=v) for h, v in harvests_and_volumes],
    )


def process(chain, lot):
    lot = lots.lot_record_filtration(
        lot=lot, actor=chain.lab1, filter_pore_size_um=D("0.22"), filter_lot="FLT-9",
        integrity_test_method="bubble_point", integrity_test_limit_bar=D("3.2"),
        integrity_test_measured_bar=D("3.6"), volume_filtered_ml=lot.volume_in_ml,
        filtered_at=t(1, 2),
    )
    lot = lots.lot_record_concentration(
        lot=lot, actor=chain.lab1, concentration_cutoff_kda=D("3"), concentration_factor=D("10"),
        volume_out_ml=(lot.volume_in_ml / 10).quantize(D("0.01")) - D("1"), concentrated_at=t(1, 4),
    )
    for step in ("pooling", "filtration", "concentration"):
        lot = lots.lot_step_verify(lot=lot, step=step, actor=chain.lab2)
    return lot


def freeze_dry(chain, lot, vials=40):
    run = drying.lyophilisation_run_start(
        lot=lot, actor=chain.lab1, run_number=f"LYO-{lot.lot_number}", dryer="LYO-A", recipe="CM-1ML",
        recipe_version="3", vials_loaded=vials, fill_volume_ml=D("0.9"), performed_at=t(1, 5), started_at=t(1, 5),
    )
    start = t(1, 5)
    for i, (phase, sp, act, p) in enumerate([
        (LyophilisationPhase.Phase.FREEZING, "-45", "-44.6", "1000"),
        (LyophilisationPhase.Phase.PRIMARY, "-25", "-24.8", "0.1"),
        (LyophilisationPhase.Phase.SECONDARY, "25", "24.9", "0.05"),
    ]):
        drying.lyophilisation_phase_record(
            run=run, phase=phase, actor=chain.lab1, shelf_temperature_setpoint_c=D(sp),
            shelf_temperature_actual_c=D(act), chamber_pressure_setpoint_mbar=D(p),
            chamber_pressure_actual_mbar=D(p), started_at=start + timedelta(hours=4 * i),
            ended_at=start + timedelta(hours=4 * i + 4),
        )
    end = start + timedelta(hours=12)
    run = drying.lyophilisation_run_complete(
        run=run, actor=chain.lab1, ended_at=end, end_of_primary_drying_method="pressure_rise",
        end_of_primary_drying_at=start + timedelta(hours=8), end_of_primary_drying_evidence="PRT < 0.01 mbar/min",
        stoppering_method="nitrogen", stoppering_pressure_mbar=D("800"), stoppered_at=end,
    )
    return records.step_verify(record=run, actor=chain.lab2)


def package(chain, lot, vials=38, rejected=2):
    run = packaging.packaging_record(
        lot=lot, actor=chain.lab1, run_number=f"PKG-{lot.lot_number}", started_at=t(0, -3), ended_at=t(0, -2),
        vials_packaged=vials, vials_rejected=rejected, storage_location=chain.location,
    )
    return records.step_verify(record=run, actor=chain.lab2)


def lot_at(chain, status: str, *, volume=D("400"), vials=40):
    """A lot brought to ``status`` (pooled, freeze_drying or packaged) through the services.

    qc_complete and beyond need qc's specification and approved results (qc's guards), so they are
    exercised in tests/qc."""
    harvest = make_harvest(chain.lab1, chain.culture, volume_ml=volume, verifier=chain.lab2, days_ago=2)
    lot = pool(chain, [(harvest, volume)])
    if status == LotStatus.POOLED:
        return lot
    lot = process(chain, lot)
    freeze_dry(chain, lot, vials=vials)
    if status == LotStatus.FREEZE_DRYING:
        return type(lot).objects.get(pk=lot.pk)
    package(chain, lot, vials=vials - 2, rejected=2)
    return type(lot).objects.get(pk=lot.pk)
