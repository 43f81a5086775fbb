"""Demo QC data (``make seed``): the CM release panel signed into force, results for every demo lot entered by
lab1/lab2 and approved by qc2, one investigation closed with a conclusion, one failing result with its open
investigation (and an open deviation on the same lot), a released lot signed by qc1, a rejected lot, and one
qc_complete lot that qc1 and qc2 may both release (every condition met) so a newcomer can try the sign-off.
Everything goes through the services.

Idempotent: a lot that already has results is left alone; a product with a specification gets no new one.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from batches.models import CMLot, LotStatus, Product
from batches.services.lots import lot_transition
from cmlims.demo import DEMO_PASSWORD
from cmlims.investigations.deviations import deviation_raise
from cmlims.investigations.services import investigation_close
from qc import selectors
from qc.models import QCResult, Specification
from qc.panel import panel_items
from qc.services.results import result_approve, result_enter, result_retest
from qc.services.signoff import lot_sign_off
from qc.services.specs import specification_approve, specification_create

# A passing value for every panel test (value, unit as the instrument reports it).
PASSING = {
    "Appearance (lyophilised cake)": ("conforms", ""),
    "Reconstitution time": ("48", "s"),
    "Residual moisture": ("1.4", "% w/w"),
    "pH (reconstituted)": ("7.45", "pH"),
    "Osmolality (reconstituted)": ("301", "mOsm/kg"),
    "Sterility": ("no growth", ""),
    "Bacterial endotoxin": ("0.8", "EU/mL"),
    "Mycoplasma": ("not detected", ""),
    "Total protein": ("2.1", "mg/mL"),
    "VEGF": ("711", "ng/L"),
    "HGF": ("1.9", "ng/mL"),
    "TGF-beta1": ("420", "pg/mL"),
    "Extracellular vesicle particle count": ("3.2e9", "particles/mL"),
    "EV markers (CD63/CD81/CD9)": ("positive", ""),
}
IN_PROCESS = ("pH (reconstituted)", "Total protein")  # measured on the bulk before freeze-drying
LATE = "demo history, entered after the fact"  # the demo backfills results of tests run days ago


def _specification(product: Product, qc1, qc2) -> Specification:
    """Drafted by qc2, signed into force by qc1 (nobody signs their own specification)."""
    existing = Specification.objects.filter(product=product).order_by("-version").first()
    if existing is not None:
        return existing
    spec = specification_create(product=product, title=f"{product.name} release specification", actor=qc2,
                                items=panel_items(),
                                notes="CM release panel (shared reference); limits marked demo are not validated")
    # In force from its approval (never backdated): signed before the demo lots are recorded
    # (``seed_specifications`` runs before ``batches.demo.seed``), so every demo lot is tested against it.
    return specification_approve(specification=spec, actor=qc1, username=qc1.username, password=DEMO_PASSWORD,
                                 reason="demo: initial release panel")


def seed_specifications(users) -> None:
    """The release specification of every product, signed into force before any demo lot is pooled."""
    for product in Product.objects.order_by("pk"):
        _specification(product, users["qc1"], users["qc2"])


def _tested_at(lot: CMLot, offset_hours: float):
    run = getattr(lot, "packaging_run", None)
    start = run.ended_at if run is not None else lot.pooled_at
    return min(start + timedelta(hours=offset_hours), timezone.now() - timedelta(minutes=5))


def _enter(lot, test, users, index, *, value=None, unit=None):
    analyst = users["lab1"] if index % 2 == 0 else users["lab2"]
    default_value, default_unit = PASSING[test]
    return result_enter(
        lot=lot, test=test, value=value or default_value, unit=default_unit if unit is None else unit,
        analyst=analyst, actor=analyst, tested_at=_tested_at(lot, 2 + index), instrument=f"{test.split()[0]}-01",
        reason=LATE,
    )


def _approve(result, users):
    # Every signature re-authenticates (there is no path that writes one without the credential check).
    qc2 = users["qc2"]
    return result_approve(result=result, actor=qc2, username=qc2.username, password=DEMO_PASSWORD)


def _full_panel(lot, users, *, skip=()) -> None:
    for index, item in enumerate(selectors.spec_items(selectors.lot_specification(lot))):
        if item.test not in skip:
            _approve(_enter(lot, item.test, users, index), users)


def _sign(lot, to, user, reason):
    lot_sign_off(lot=lot, to=to, actor=user, username=user.username, password=DEMO_PASSWORD,
                 reason=reason, audit_reviewed_through=selectors.lot_review_latest_sequence(lot))


def _released_with_closed_investigation(lot, users) -> None:
    """An endotoxin OOS traced to a contaminated tip: investigated, closed, retest passes; then released."""
    _full_panel(lot, users, skip=("Bacterial endotoxin",))
    failing = _enter(lot, "Bacterial endotoxin", users, 20, value="18.2", unit="EU/mL")
    retest = result_retest(result=failing, actor=users["lab2"], value="0.9", unit="EU/mL", analyst=users["lab2"],
                           tested_at=_tested_at(lot, 30), instrument="LAL-02", reason=LATE)
    _approve(retest, users)
    for investigation in selectors.lot_investigations(lot, open_only=True):
        # qc2 approved the results: qc1, who touched none of them, closes the investigation (rule 2), signed.
        investigation_close(
            investigation=investigation, actor=users["qc1"], username="qc1", password=DEMO_PASSWORD,
            root_cause="pipette tip lot PT-4411 contaminated (positive blank on the same run)",
            related_lots_checked="every lot tested with tip lot PT-4411 on that day re-checked: none affected",
            conclusion="laboratory error confirmed (phase I); original result invalidated; retest 0.9 EU/mL passes",
        )
    lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=users["qc2"])
    _sign(lot, LotStatus.RELEASED, users["qc1"], "every release condition met")


def _failing_with_open_investigation(lot, users) -> None:
    _full_panel(lot, users, skip=("pH (reconstituted)",))
    _enter(lot, "pH (reconstituted)", users, 21, value="8.4", unit="pH")  # OOS: opens an investigation
    # ... and lab2 raised a deviation against the same lot: its release waits for both.
    deviation_raise(subject=lot, actor=users["lab2"], title="Crimp torque below range on filling line 2",
                    details="18 vials crimped at 3.1 N·m (range 3.5-4.5) before the line was stopped; "
                            "vials segregated, container-closure integrity to be assessed")


def _rejected(lot, users) -> None:
    _full_panel(lot, users, skip=("Sterility",))
    _approve(_enter(lot, "Sterility", users, 22, value="growth"), users)
    # The investigation concludes first and the rejection signs its conclusion (closing it after the signature
    # would rightly show the rejection as "changed after signing").
    for investigation in selectors.lot_investigations(lot, open_only=True):
        investigation_close(
            investigation=investigation, actor=users["qc1"], username="qc1", password=DEMO_PASSWORD,
            root_cause="aseptic filling breach (EM excursion, room B)",
            related_lots_checked="lots filled in room B that week re-tested: sterile",
            conclusion="confirmed sterility failure (phase II); the lot is rejected",
        )
    _sign(lot, LotStatus.REJECTED, users["qc1"], "sterility failure (USP <71>: growth in the test medium)")


def _releasable(lot, users) -> None:
    _full_panel(lot, users)
    lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=users["qc2"])


def seed(users) -> None:
    lots = list(CMLot.objects.filter(voided_at__isnull=True).select_related("product").order_by("pooled_at", "pk"))
    for product in {lot.product for lot in lots}:
        _specification(product, users["qc1"], users["qc2"])
    tested = set(QCResult.objects.values_list("lot_id", flat=True).distinct())
    fresh = [lot for lot in lots if lot.pk not in tested]
    # Packaged lots get the QC story, oldest first; more lots than stories just get approved passing results.
    stories = [_released_with_closed_investigation, _releasable, _failing_with_open_investigation, _rejected]
    for lot in fresh:
        if lot.status == LotStatus.PACKAGED:
            story = stories.pop(0) if stories else _releasable
            story(lot, users)
        elif lot.status in (LotStatus.POOLED, LotStatus.FREEZE_DRYING):
            for index, test in enumerate(IN_PROCESS):
                _approve(_enter(lot, test, users, index), users)
        elif lot.status == LotStatus.QC_COMPLETE:
            _full_panel(lot, users)

