"""Demo manufacturing history (``make seed``): two eligible donors, their master and working banks, four
cultures, harvests and seven lots — five packaged in quarantine (qc's seeder takes them on to released,
rejected, QC complete and an open OOS), one in freeze-drying and one just pooled. lab1 and lab2 take turns
performing and verifying each step (211.188(b)); everything goes through the services, so every record has
its audit entries.

Idempotent: the whole history is created in one transaction (``config.demo.seed_all``), so when the demo
product exists, everything here exists and nothing is done again.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from cmlims.demo import DEMO_PASSWORD

from .models import CellSource, Culture, LotStatus, LyophilisationPhase, Product, StorageLocation
from .services import cultures, drying, lots, packaging, products, records, sources

D = Decimal
DEMO_GTIN = "04050123456785"
# The demo enters a history of weeks in one go: every step is a late entry, with this reason.
LATE = "demo history, entered after the fact"
# Days before now each lot was pooled, oldest first, and how far it goes here.
LOT_PLAN = [
    (31, LotStatus.PACKAGED), (26, LotStatus.PACKAGED), (21, LotStatus.PACKAGED), (16, LotStatus.PACKAGED),
    (11, LotStatus.PACKAGED), (2.5, LotStatus.FREEZE_DRYING), (1, LotStatus.POOLED),
]


def _ago(days: float, hours: float = 0) -> datetime:
    return timezone.now() - timedelta(days=days) + timedelta(hours=hours)


def _day(days: int) -> date:
    return timezone.localdate() - timedelta(days=days)


def _donor_and_banks(code: str, tissue: str, users, n: int):
    lab1, lab2 = users["lab1"], users["lab2"]
    donor = sources.cell_source_create(
        actor=lab1, code=code, tissue=tissue, collection_date=_day(160 + n * 20), consent_status="given",
        consent_recorded_on=_day(161 + n * 20),
        eligibility_notes="donor screening and infectious-disease testing negative (HIV-1/2, HBV, HCV, HTLV, "
                          "syphilis); no exclusion criteria",
    )
    # Eligibility is a QC officer's signed determination on the screening records, not a status lab staff type.
    qc2 = users["qc2"]
    donor = sources.donor_eligibility_determine(
        source=donor, actor=qc2, eligibility_status="eligible", username=qc2.username, password=DEMO_PASSWORD,
        reason="screening and testing complete and negative; no risk factors (1271.50)",
        evidence="donor medical history questionnaire and physical assessment reviewed; infectious-disease panel "
                 "(HIV-1/2, HBV, HCV, HTLV-I/II, T. pallidum) non-reactive, FDA-licensed tests",
    )
    identity = {"cd73_percent": D("99.2") - n, "cd90_percent": D("98.8"), "cd105_percent": D("97.1") + n,
                "cd34_percent": D("0.4"), "cd45_percent": D("0.6"), "cd14_percent": D("0.3"),
                "cd19_percent": D("0.2"), "hla_dr_percent": D("0.9")}
    master = sources.cell_bank_create(
        actor=lab1, code=f"MCB-{code}", kind="master", source=donor, passage_at_freeze=1, frozen_on=_day(120),
        vials_frozen=40, vials_on_hand=38, cells_per_vial=10_000_000, storage_location=users["_ln2"],
        performed_at=_ago(120), **identity, reason=LATE,
    )
    records.step_verify(record=master, actor=lab2)
    working = sources.cell_bank_create(
        actor=lab2, code=f"WCB-{code}", kind="working", source=donor, parent_bank=master, passage_at_freeze=2,
        frozen_on=_day(80), vials_frozen=60, vials_on_hand=60, cells_per_vial=5_000_000,
        storage_location=users["_ln2"], performed_at=_ago(80), **identity, reason=LATE,
    )
    records.step_verify(record=working, actor=lab1)
    return working


def _culture(code: str, product: Product, bank, conditioning_days_ago: float, performer, verifier) -> Culture:
    start = conditioning_days_ago + 12
    culture = cultures.culture_create(actor=performer, product=product, bank=bank, code=code, started_at=_ago(start),
                                      vessel="CellSTACK 10-chamber", medium_lot="MSC-XF-2231",
                                      reagent_lots="TrypLE Select 2871104\nDPBS 2874431", performed_at=_ago(start),
                                      reason=LATE)
    seeded, harvested = 5_000_000, 40_000_000
    for number, (begin, end) in zip((3, 4, 5), ((0.5, 4.5), (4.6, 8.6), (8.7, 11.8)), strict=True):
        passage = cultures.passage_record(
            culture=culture, actor=performer, passage_number=number, seeded_at=_ago(start - begin),
            harvested_at=_ago(start - end), cells_seeded=seeded, cells_harvested=harvested - number * 1_000_000,
            viability_percent=D("95.5") - number, confluence_percent=D("82") + number, vessel="CellSTACK 10-chamber",
            medium_lot="MSC-XF-2231", reason=LATE,
        )
        records.step_verify(record=passage, actor=verifier)
    culture = cultures.culture_start_conditioning(culture=culture, actor=performer, confluence_percent=D("88"),
                                                  started_at=_ago(conditioning_days_ago), reason=LATE)
    return records.step_verify(record=culture, actor=verifier)


def _harvest(culture: Culture, pooled_days_ago: float, volume: Decimal, performer, verifier):
    pooled = _ago(pooled_days_ago)
    harvest = cultures.harvest_record(
        culture=culture, actor=performer, conditioning_started_at=pooled - timedelta(hours=54),
        conditioning_ended_at=pooled - timedelta(hours=4), volume_ml=volume, viability_percent=D("91.5"),
        hold_temperature_c=D("4"), container="2 L PETG bottle", performed_at=pooled - timedelta(hours=4),
        reason=LATE,
    )
    return records.step_verify(record=harvest, actor=verifier)


def _process(lot, performer, verifier, pooled: datetime):
    lot = lots.lot_record_filtration(
        lot=lot, actor=performer, filter_pore_size_um=D("0.22"), filter_lot="Sartopore2-2299431",
        filtered_at=pooled + timedelta(hours=1), integrity_test_method="bubble_point",
        integrity_test_limit_bar=D("3.200"), integrity_test_measured_bar=D("3.650"),
        volume_filtered_ml=lot.volume_in_ml - D("6"), reason=LATE,
    )
    out = ((lot.volume_in_ml - D("6")) / 10 - D("2.5")).quantize(D("0.01"))
    lot = lots.lot_record_concentration(lot=lot, actor=performer, concentration_cutoff_kda=D("3"),
                                        concentration_factor=D("10"), volume_out_ml=out,
                                        concentrated_at=pooled + timedelta(hours=5), reason=LATE)
    for step in lots.LOT_STEPS:
        lot = lots.lot_step_verify(lot=lot, step=step, actor=verifier)
    return lot


PHASES = [  # phase, shelf set point, actual, pressure set point, actual, hours
    (LyophilisationPhase.Phase.FREEZING, "-45.0", "-44.6", "1013.0000", "1012.4000", 4),
    (LyophilisationPhase.Phase.PRIMARY, "-25.0", "-24.7", "0.1000", "0.1040", 30),
    (LyophilisationPhase.Phase.SECONDARY, "25.0", "24.8", "0.0500", "0.0480", 8),
]


def _freeze_dry(lot, n: int, performer, verifier, pooled: datetime, *, complete: bool):
    vials = int(lot.volume_out_ml // D("1.0")) - 2
    loaded = pooled + timedelta(hours=8)
    run = drying.lyophilisation_run_start(
        lot=lot, actor=performer, run_number=f"LYO-{lot.lot_number}", dryer="LYO-2 (Martin Christ Epsilon 2-6D)",
        recipe="CM-1mL-cake", recipe_version="4", vials_loaded=vials, fill_volume_ml=D("1.0"), started_at=loaded,
        performed_at=loaded, reason=LATE,
    )
    at = loaded
    for phase, sp, actual, psp, pact, hours in PHASES:
        end = at + timedelta(hours=hours)
        if end > timezone.now():
            return run  # still running
        drying.lyophilisation_phase_record(
            run=run, phase=phase, actor=performer, shelf_temperature_setpoint_c=D(sp),
            shelf_temperature_actual_c=D(actual), chamber_pressure_setpoint_mbar=D(psp),
            chamber_pressure_actual_mbar=D(pact), started_at=at, ended_at=end, reason=LATE,
        )
        at = end
    if not complete:
        return run
    run = drying.lyophilisation_run_complete(
        run=run, actor=performer, ended_at=at, end_of_primary_drying_method="comparative_pressure",
        end_of_primary_drying_at=loaded + timedelta(hours=33),
        end_of_primary_drying_evidence="Pirani converged with capacitance manometer (0.104 → 0.105 mbar) at 29 h",
        stoppering_method="nitrogen", stoppering_pressure_mbar=D("800"), stoppered_at=at,
        alarms="" if n % 3 else "condenser temperature high (-52 °C) for 6 min at 14 h; recovered, no action",
        alarm_count=0 if n % 3 else 1, reason=LATE,
    )
    return records.step_verify(record=run, actor=verifier)


# The demo product's shelf life, storage and transport, and process limits (the benchmarks' B5 product has the
# same: ``benchmarks/dataset_coa.py``).
PRODUCT_PROCESS = {
    "shelf_life_days": 730, "storage_temperature_min_c": D("-25"), "storage_temperature_max_c": D("-15"),
    "transport_temperature_min_c": D("-25"), "transport_temperature_max_c": D("8"),
    "transport_excursion_allowed_minutes": 30, "max_passage": 5, "max_population_doublings": D("15"),
    "min_viability_percent": D("80"), "conditioning_min_hours": D("48"), "conditioning_max_hours": D("72"),
    "nominal_fill_volume_ml": D("1.0"), "requires_second_person_verification": True,
}


def seed_product(users) -> None:
    """The demo product and its storage, first: QC signs the product's specification into force before any demo
    lot is pooled (a specification is never backdated), then ``seed`` records the lots."""
    if Product.objects.filter(gtin=DEMO_GTIN).exists():
        return
    lab1 = users["lab1"]
    product = products.product_create(
        actor=lab1, name="SecretoMed MSC-CM lyophilisate 1 mL", gtin=DEMO_GTIN,
        description="Freeze-dried, 10× concentrated conditioned medium of umbilical-cord MSC (serum-free)",
        **PRODUCT_PROCESS,
    )
    # The process limits take effect once a QC officer (not lab1, who set them) approves them, signed.
    qc1 = users["qc1"]
    products.product_limits_approve(product=product, actor=qc1, username=qc1.username, password=DEMO_PASSWORD,
                                    reason="process validation PV-2026-01 limits")
    products.storage_location_create(actor=lab1, code="LN2-01", name="Cell bank LN2 tank 1", kind="ln2",
                                     temperature_min_c=D("-196"), temperature_max_c=D("-150"))
    released = products.storage_location_create(
        actor=lab1, code="FRZ-R1", name="Released stock freezer −20 °C", kind="freezer",
        temperature_min_c=D("-25"), temperature_max_c=D("-15"))
    products.storage_location_create(
        actor=lab1, code="FRZ-Q1", name="Quarantine freezer −20 °C", kind="freezer",
        temperature_min_c=D("-25"), temperature_max_c=D("-15"), released_stock_location=released)


def seed(users) -> None:
    seed_product(users)
    product = Product.objects.get(gtin=DEMO_GTIN)
    if product.lots.exists():
        return  # created together in one transaction: already seeded
    lab1, lab2 = users["lab1"], users["lab2"]
    ln2 = StorageLocation.objects.get(code="LN2-01")
    quarantine = StorageLocation.objects.get(code="FRZ-Q1")
    helpers = {**users, "_ln2": ln2}
    bank_a = _donor_and_banks("UC-24-017", CellSource.Tissue.UMBILICAL_CORD, helpers, 0)
    bank_b = _donor_and_banks("WJ-25-003", CellSource.Tissue.WHARTONS_JELLY, helpers, 1)
    # Two cultures per donor: the first pair feeds the older lots, the second pair the recent ones.
    early = [_culture("CU-0101", product, bank_a, 34, lab1, lab2), _culture("CU-0102", product, bank_b, 34, lab2, lab1)]
    late = [_culture("CU-0103", product, bank_a, 14, lab1, lab2), _culture("CU-0104", product, bank_b, 14, lab2, lab1)]

    for n, (days_ago, target) in enumerate(LOT_PLAN):
        performer, verifier = (lab1, lab2) if n % 2 == 0 else (lab2, lab1)
        pair = early if days_ago > 13 else late
        harvests = [_harvest(c, days_ago, D("500") + 10 * n - 15 * i, performer, verifier)
                    for i, c in enumerate(pair)]
        pooled = _ago(days_ago)
        lot = lots.lot_pool(
            product=product, actor=performer, pooled_at=pooled, reason=LATE,
            contributions=[lots.Contribution(h.pk, h.volume_ml - D("20")) for h in harvests],
        )
        if target == LotStatus.POOLED:
            continue
        lot = _process(lot, performer, verifier, pooled)
        run = _freeze_dry(lot, n, performer, verifier, pooled, complete=target != LotStatus.FREEZE_DRYING)
        if target == LotStatus.FREEZE_DRYING:
            continue
        end = run.ended_at + timedelta(hours=8)
        pack = packaging.packaging_record(
            lot=lot, actor=performer, run_number=f"PKG-{lot.lot_number}", started_at=run.ended_at + timedelta(hours=4),
            ended_at=end, vials_packaged=run.vials_loaded - 2 - n % 2, vials_rejected=2 + n % 2,
            storage_location=quarantine, reason=LATE,
        )
        records.step_verify(record=pack, actor=verifier)
    for culture in early:
        cultures.culture_close(culture=culture, actor=lab1, reason="conditioning cycles complete (4 harvests)",
                               closed_at=_ago(15))
