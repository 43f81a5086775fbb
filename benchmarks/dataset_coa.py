"""B5's lot (issue 14): a released lot whose certificate of analysis has 30 results, made once per dataset.

The demo's released lot has 15 results (its specification's 14 items and one retest), not the issue's 30. This
builds, through the services the app uses — so every record has its audit entries and signatures, and the
certificate's content check (investigations, audit review, the v2 genealogy) reads a real record —:
a product of its own (GTIN ``COA_GTIN``; its process limits approved), a 30-item release specification (the CM
panel's 14 tests and 16 more secreted factors) signed into force, one donor with its master and working banks, a
culture with three passages, two harvests, a lot pooled from them, filtered, concentrated, freeze-dried and
packaged (every step verified by the other technician), 30 results entered and approved, the lot QC complete,
its audit trail reviewed and the lot released with a signature. Each time is in the past (late entries with a
reason), the lot pooled after the specification came into force. Each lot in one transaction: built whole or
not at all. ``coa_lots(n)`` makes more such lots, each from a donor of its own: B1s/B2f list a page of signed
lots (the clones carry no signatures, so B1 and B2 measure pages of unsigned lots only).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from stdnum import ean

COA_GTIN_BODY = "0405012345679"
COA_GTIN = COA_GTIN_BODY + ean.calc_check_digit(COA_GTIN_BODY)
RESULTS = 30
D = Decimal
# Secreted factors beyond the CM panel (ELISA, pg/mL; demo limits, not validated), 16 to make 30 items.
_FACTORS = ("IL-6", "IL-8", "MCP-1", "TIMP-1", "TIMP-2", "IGF-1", "PDGF-BB", "FGF-2", "Angiopoietin-1", "SDF-1",
            "HGF activator", "Follistatin", "Osteoprotegerin", "Galectin-1", "PEDF", "Decorin")


def _items() -> list[dict]:
    from qc.models import LimitKind
    from qc.panel import panel_items

    items = panel_items()
    items += [{"test": name, "method": "ELISA", "unit": "pg/mL", "limit_kind": LimitKind.RANGE, "lower": D("10"),
               "upper": D("100000"), "source": "benchmark B5 (demo limit)", "mandatory": True, "demo_limit": True}
              for name in _FACTORS]
    assert len(items) == RESULTS, len(items)
    return [{**item, "order": order} for order, item in enumerate(items, start=1)]


def _passing(test: str) -> tuple[str, str]:
    from qc.demo import PASSING

    return PASSING.get(test) or ("150", "pg/mL")


def coa_lot():
    """The released 30-result lot, built if this database has none yet."""
    return coa_lots(1)[0]


def coa_lots(count: int) -> list:
    """``count`` released 30-result lots of the B5 product, oldest first (B5's lot is the first), the missing
    ones built (each in its own transaction); ANALYZE after a build."""
    from django.db import transaction

    from batches.models import CMLot, LotStatus

    def released() -> list:
        return list(CMLot.objects.filter(product__gtin=COA_GTIN, status=LotStatus.RELEASED).order_by("pk"))

    lots = released()
    if len(lots) >= count:
        return lots[:count]
    with transaction.atomic():
        product = _product()
    for index in range(len(lots) + 1, count + 1):
        with transaction.atomic():
            _signed_lot(product, index)
        if index % 5 == 0:
            print(f"[dataset] B5 product: {index}/{count} released 30-result lots", flush=True)
    # Its records are the newest of tables the clones leave small (passages: the demo's 18): without fresh
    # statistics PostgreSQL plans their lookups for the old values (a merge join over every culture, 30 ms).
    from benchmarks.dataset import tables_analyze

    tables_analyze()
    return released()[:count]


def _users() -> dict:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.in_bulk(["lab1", "lab2", "qc1", "qc2"], field_name="username")  # the demo's


def _product():
    """The B5 product with its process limits approved and its 30-item specification in force (made once)."""
    from batches import demo
    from batches.models import Product
    from batches.services import products
    from cmlims.demo import DEMO_PASSWORD
    from qc.services.specs import specification_approve, specification_create

    existing = Product.objects.filter(gtin=COA_GTIN).first()
    if existing is not None:
        return existing
    users = _users()
    lab1, qc1, qc2 = users["lab1"], users["qc1"], users["qc2"]
    product = products.product_create(
        actor=lab1, name="MSC-CM lyophilisate 1 mL (B5 30-test panel)", gtin=COA_GTIN,
        description="benchmark B5: a product whose release specification has 30 tests", **demo.PRODUCT_PROCESS,
    )
    product = products.product_limits_approve(product=product, actor=qc1, username=qc1.username, password=DEMO_PASSWORD,
                                              reason="benchmark B5: process limits")
    spec = specification_create(product=product, title=f"{product.name} release specification", actor=qc2,
                                items=_items(), notes="benchmark B5: 30 tests")
    specification_approve(specification=spec, actor=qc1, username=qc1.username, password=DEMO_PASSWORD,
                          reason="benchmark B5: 30-test release panel")
    return product


def _signed_lot(product, index: int):
    """One lot of ``product`` from its own donor, made, tested (30 results approved), reviewed and released."""
    from batches import demo
    from batches.models import CellSource, LotStatus, StorageLocation
    from batches.services import lots, packaging, records
    from batches.services.lots import lot_transition
    from cmlims.demo import DEMO_PASSWORD
    from qc import selectors
    from qc.services.results import result_approve, result_enter
    from qc.services.signoff import lot_sign_off

    users = _users()
    lab1, lab2, qc1, qc2 = users["lab1"], users["lab2"], users["qc1"], users["qc2"]
    helpers = {**users, "_ln2": StorageLocation.objects.get(code="LN2-01")}
    bank = demo._donor_and_banks(f"B5-COA-{index:02d}", CellSource.Tissue.UMBILICAL_CORD, helpers, 2)
    days_ago = 11
    culture = demo._culture(f"CU-B5-{index:02d}A", product, bank, days_ago + 3, lab1, lab2)
    culture_b = demo._culture(f"CU-B5-{index:02d}B", product, bank, days_ago + 3, lab2, lab1)
    harvests = [demo._harvest(c, days_ago, D("500") - 15 * i, lab1, lab2) for i, c in enumerate((culture, culture_b))]
    pooled = demo._ago(days_ago)
    lot = lots.lot_pool(product=product, actor=lab1, pooled_at=pooled, reason=demo.LATE,
                        contributions=[lots.Contribution(h.pk, h.volume_ml - D("20")) for h in harvests])
    lot = demo._process(lot, lab1, lab2, pooled)
    run = demo._freeze_dry(lot, 1, lab1, lab2, pooled, complete=True)
    pack = packaging.packaging_record(
        lot=lot, actor=lab1, run_number=f"PKG-{lot.lot_number}", started_at=run.ended_at + timedelta(hours=4),
        ended_at=run.ended_at + timedelta(hours=8), vials_packaged=run.vials_loaded - 2, vials_rejected=2,
        storage_location=StorageLocation.objects.get(code="FRZ-Q1"), reason=demo.LATE,
    )
    records.step_verify(record=pack, actor=lab2)
    lot.refresh_from_db()
    tested = pack.ended_at + timedelta(hours=2)
    for item_index, item in enumerate(selectors.spec_items(selectors.lot_specification(lot))):
        analyst = lab1 if item_index % 2 == 0 else lab2
        value, unit = _passing(item.test)
        result = result_enter(lot=lot, test=item.test, value=value, unit=unit, analyst=analyst, actor=analyst,
                              tested_at=tested + timedelta(minutes=10 * item_index), instrument="B5-01",
                              reason=demo.LATE)
        result_approve(result=result, actor=qc2, username=qc2.username, password=DEMO_PASSWORD)
    lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=qc2)
    lot_sign_off(lot=lot, to=LotStatus.RELEASED, actor=qc1, username=qc1.username, password=DEMO_PASSWORD,
                 reason="benchmark B5: every release condition met",
                 audit_reviewed_through=selectors.lot_review_latest_sequence(lot))
    lot.refresh_from_db()
    assert lot.status == LotStatus.RELEASED and lot.qc_results.count() == RESULTS, (lot.status, lot.pk)
    return lot
