"""Test data builders: the one place tests make products, donors, lots, QC results and shipments.

Every record goes through the services (``batches.services``, ``qc.services``, ``batches.shipping.services``),
so audit entries are written and the rules apply exactly as in production: a builder that could make a
record the services would refuse would let a test pass against data that cannot exist.

factory_boy holds the default values of the single-record builders (``_create`` calls the service);
the chains that need several services in order (a lot at a status) are plain functions.
Conftests turn these into fixtures; tests import them from here, never from a conftest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import factory
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from batches.models import (
    CellBank,
    CellSource,
    CMLot,
    Culture,
    Harvest,
    LotStatus,
    LyophilisationPhase,
    LyophilisationRun,
    PackagingRun,
    Product,
    StorageLocation,
)
from batches.services import cultures, drying, lots, packaging, products, records, sources
from batches.shipping import services as shipping
from batches.shipping.models import Consignee, Shipment
from cmlims import roles
from cmlims.audit import chain_head
from qc.models import QCResult, Specification, SpecItem, SpecStatus
from qc.services.hold import lot_hold
from qc.services.results import result_approve, result_enter
from qc.services.signoff import lot_sign_off
from qc.services.specs import specification_approve, specification_create

D = Decimal
PASSWORD = "correct-horse-battery"


# --- users ------------------------------------------------------------------------------------------------


def make_user(username: str, *role_names: str, password: str = PASSWORD, **extra):
    """A user in ``role_names`` (the role groups are synced first: they survive transactional flushes)."""
    roles.sync_role_permissions()
    user = get_user_model().objects.create_user(
        username=username, password=password,
        first_name=extra.pop("first_name", username.capitalize()), last_name=extra.pop("last_name", "Tester"),
        **extra,
    )
    user.groups.add(*Group.objects.filter(name__in=role_names))
    return user


def sign(user, meaning: str, reason: str = "") -> dict:
    """The signature fields of a signed shipping step (username, password, meaning, reason)."""
    return {"username": user.username, "password": PASSWORD, "meaning": meaning, "reason": reason}


# --- time -------------------------------------------------------------------------------------------------


# The builders record steps days after they happened: late entries, each with this reason.
LATE = "entered late from the paper batch record"


def t(days_ago: float, hours: float = 0, *, base: dt.datetime | None = None) -> dt.datetime:
    """A time ``days_ago`` days before ``base`` (default now), plus ``hours``."""
    return (base or timezone.now()) - timedelta(days=days_ago) + timedelta(hours=hours)


# --- single records (factory_boy defaults, written by the service) ----------------------------------------


class ProductFactory(factory.Factory):
    class Meta:
        model = Product

    name = "MSC-CM lyophilisate 1 mL"
    gtin = "09506000134352"
    shelf_life_days = 365
    storage_temperature_min_c = D("-25")
    storage_temperature_max_c = D("-15")
    transport_temperature_min_c = D("-25")
    transport_temperature_max_c = D("8")
    transport_excursion_allowed_minutes = 30
    max_passage = 5
    max_population_doublings = D("20")
    conditioning_min_hours = D("48")
    conditioning_max_hours = D("72")
    nominal_fill_volume_ml = D("1.0")
    requires_second_person_verification = True

    @classmethod
    def _create(cls, model_class, actor, **values) -> Product:
        return product_limits_approved(products.product_create(actor=actor, **values))


class StorageLocationFactory(factory.Factory):
    class Meta:
        model = StorageLocation

    code = "FRZ-01"
    name = "Freezer 1"
    kind = "freezer"
    temperature_min_c = D("-25")
    temperature_max_c = D("-15")

    @classmethod
    def _create(cls, model_class, actor, **values) -> StorageLocation:
        return products.storage_location_create(actor=actor, **values)


class DonorFactory(factory.Factory):
    """A consented umbilical-cord donor; ``on`` is the day the dates count back from (default today)."""

    class Meta:
        model = CellSource

    class Params:
        # The site's date, as the services see it (not the OS zone's date.today()).
        on = factory.LazyFunction(timezone.localdate)

    eligible = True  # determined eligible by a QC officer's signature (``donor_eligible``) after it is recorded
    code = "DN-0001"
    tissue = CellSource.Tissue.UMBILICAL_CORD
    collection_date = factory.LazyAttribute(lambda o: o.on - timedelta(90))
    consent_status = "given"
    consent_recorded_on = factory.LazyAttribute(lambda o: o.on - timedelta(91))
    eligibility_notes = "screening and infectious-disease testing negative"

    @classmethod
    def _create(cls, model_class, actor, eligible: bool = True, **values) -> CellSource:
        source = sources.cell_source_create(actor=actor, **values)
        return donor_eligible(source) if eligible else source


MASTER_DATA_OFFICER = "qc-master"  # signs master data in the builders; takes part in no lot


def _master_data_officer():
    return (get_user_model().objects.filter(username=MASTER_DATA_OFFICER).first()
            or make_user(MASTER_DATA_OFFICER, roles.QC_OFFICER))


def product_limits_approved(product: Product) -> Product:
    """The product's current process limits approved (signed) by a QC officer who did not set them."""
    officer = _master_data_officer()
    return products.product_limits_approve(product=product, actor=officer, username=officer.username,
                                           password=PASSWORD)


def donor_eligible(source: CellSource, status: str = "eligible") -> CellSource:
    """``source`` determined ``status`` by a QC officer (``qc-master``, who recorded none of it), signed."""
    officer = _master_data_officer()
    return sources.donor_eligibility_determine(
        source=source, actor=officer, eligibility_status=status, reason="screening complete",
        evidence="questionnaire, physical assessment, infectious-disease panel non-reactive",
        username=officer.username, password=PASSWORD)


class BankFactory(factory.Factory):
    """A characterised master cell bank of ``source``, frozen 60 days before ``on`` (default today)."""

    class Meta:
        model = CellBank

    class Params:
        on = factory.LazyFunction(timezone.localdate)  # the site's date, not the OS zone's

    code = "WCB-0001"
    kind = "master"
    passage_at_freeze = 2
    frozen_on = factory.LazyAttribute(lambda o: o.on - timedelta(60))
    vials_frozen = 50
    vials_on_hand = 50
    cells_per_vial = 5_000_000
    cd73_percent = D("99.1")
    cd90_percent = D("98.7")
    cd105_percent = D("97.5")
    cd34_percent = D("0.4")
    cd45_percent = D("0.3")
    cd14_percent = D("0.2")
    cd19_percent = D("0.1")
    hla_dr_percent = D("0.5")

    @classmethod
    def _create(cls, model_class, actor, **values) -> CellBank:
        return sources.cell_bank_create(actor=actor, **values)


class ConsigneeFactory(factory.Factory):
    class Meta:
        model = Consignee

    name = "Klinik Nord"
    kind = "clinic"
    address_line1 = "Hafenstrasse 1"
    postal_code = "20095"
    city = "Hamburg"
    country = "DE"
    contact_name = "Dr. A. Berg"
    contact_email = "berg@example.org"

    @classmethod
    def _create(cls, model_class, actor, **values) -> Consignee:
        return shipping.consignee_create(actor=actor, **values)


def make_product(actor, **overrides) -> Product:
    return ProductFactory(actor=actor, **overrides)


def make_donor(actor, code: str = "DN-0001", eligible: bool = True, *, on: date | None = None) -> CellSource:
    return DonorFactory(actor=actor, code=code, eligible=eligible, **({"on": on} if on else {}))


def make_bank(actor, source: CellSource, code: str = "WCB-0001", *, on: date | None = None) -> CellBank:
    return BankFactory(actor=actor, source=source, code=code, **({"on": on} if on else {}))


# --- the manufacturing chain ------------------------------------------------------------------------------


def make_conditioning_culture(actor, product: Product, bank: CellBank, code: str = "CU-0001",
                              started_days_ago: float = 20, *, base: dt.datetime | None = None) -> Culture:
    """A culture started ``started_days_ago`` before ``base`` (default now), one passage, then conditioning."""
    culture = cultures.culture_create(actor=actor, product=product, bank=bank, code=code,
                                      started_at=t(started_days_ago, base=base), vessel="CellSTACK 5",
                                      medium_lot="MED-1", reason=LATE)
    cultures.passage_record(culture=culture, actor=actor, passage_number=3, reason=LATE,
                            seeded_at=t(started_days_ago - 1, base=base),
                            harvested_at=t(started_days_ago - 5, base=base), cells_seeded=5_000_000,
                            cells_harvested=40_000_000, viability_percent=D("94.5"), confluence_percent=D("85"))
    return cultures.culture_start_conditioning(culture=culture, actor=actor, confluence_percent=D("85"),
                                               started_at=t(started_days_ago - 6, base=base), reason=LATE)


def make_harvest(actor, culture: Culture, *, days_ago: float = 3, volume_ml: Decimal = D("500"), verifier=None,
                 base: dt.datetime | None = None) -> Harvest:
    harvest = cultures.harvest_record(
        culture=culture, actor=actor, conditioning_started_at=t(days_ago + 2, base=base),
        conditioning_ended_at=t(days_ago, base=base), volume_ml=volume_ml, viability_percent=D("92"),
        hold_temperature_c=D("4"), reason=LATE,
    )
    if verifier is not None:
        harvest = records.step_verify(record=harvest, actor=verifier)
    return harvest


@dataclass
class Chain:
    """Who makes and verifies lots of ``product``, where they are stored, and one conditioning culture."""

    lab1: object
    lab2: object
    qc: object
    product: Product
    location: StorageLocation
    source: CellSource | None = None
    bank: CellBank | None = None
    culture: Culture | None = None


def make_chain(*, lab1, lab2, qc) -> Chain:
    """The default chain: product, freezer, eligible donor, master bank and a conditioning culture."""
    product = make_product(lab1)
    location = StorageLocationFactory(actor=lab1)
    source = make_donor(lab1)
    bank = make_bank(lab1, source)
    culture = make_conditioning_culture(lab1, product, bank)
    return Chain(lab1=lab1, lab2=lab2, qc=qc, product=product, location=location, source=source, bank=bank,
                 culture=culture)


def pool(chain: Chain, harvests_and_volumes, pooled_at: dt.datetime | None = None) -> CMLot:
    return lots.lot_pool(
        product=chain.product, actor=chain.lab1, pooled_at=pooled_at or t(1), reason=LATE,
        contributions=[lots.Contribution(harvest_id=h.pk, volume_ml=v) for h, v in harvests_and_volumes],
    )


def process(chain: Chain, lot: CMLot, *, base: dt.datetime | None = None) -> CMLot:
    """Filtration and concentration a day before ``base`` (default now), each step verified by lab2."""
    lot = lots.lot_record_filtration(
        lot=lot, actor=chain.lab1, filter_pore_size_um=D("0.22"), filter_lot="FLT-9",
        integrity_test_method="bubble_point", integrity_test_limit_bar=D("3.2"),
        integrity_test_measured_bar=D("3.6"), volume_filtered_ml=lot.volume_in_ml,
        filtered_at=t(1, 2, base=base), reason=LATE,
    )
    lot = lots.lot_record_concentration(
        lot=lot, actor=chain.lab1, concentration_cutoff_kda=D("3"), concentration_factor=D("10"),
        volume_out_ml=(lot.volume_in_ml / 10).quantize(D("0.01")) - D("1"), concentrated_at=t(1, 4, base=base),
        reason=LATE,
    )
    for step in ("pooling", "filtration", "concentration"):
        lot = lots.lot_step_verify(lot=lot, step=step, actor=chain.lab2)
    return lot


def freeze_dry(chain: Chain, lot: CMLot, vials: int = 40, *, base: dt.datetime | None = None) -> LyophilisationRun:
    start = t(1, 5, base=base)
    run = drying.lyophilisation_run_start(
        lot=lot, actor=chain.lab1, run_number=f"LYO-{lot.lot_number}", dryer="LYO-A", recipe="CM-1ML",
        recipe_version="3", vials_loaded=vials, fill_volume_ml=D("0.9"), performed_at=start, started_at=start,
        reason=LATE,
    )
    for i, (phase, sp, act, p) in enumerate([
        (LyophilisationPhase.Phase.FREEZING, "-45", "-44.6", "1000"),
        (LyophilisationPhase.Phase.PRIMARY, "-25", "-24.8", "0.1"),
        (LyophilisationPhase.Phase.SECONDARY, "25", "24.9", "0.05"),
    ]):
        drying.lyophilisation_phase_record(
            run=run, phase=phase, actor=chain.lab1, shelf_temperature_setpoint_c=D(sp),
            shelf_temperature_actual_c=D(act), chamber_pressure_setpoint_mbar=D(p),
            chamber_pressure_actual_mbar=D(p), started_at=start + timedelta(hours=4 * i),
            ended_at=start + timedelta(hours=4 * i + 4), reason=LATE,
        )
    end = start + timedelta(hours=12)
    run = drying.lyophilisation_run_complete(
        run=run, actor=chain.lab1, ended_at=end, end_of_primary_drying_method="pressure_rise",
        end_of_primary_drying_at=start + timedelta(hours=8), end_of_primary_drying_evidence="PRT < 0.01 mbar/min",
        stoppering_method="nitrogen", stoppering_pressure_mbar=D("800"), stoppered_at=end, reason=LATE,
    )
    return records.step_verify(record=run, actor=chain.lab2)


def package(chain: Chain, lot: CMLot, vials: int = 38, rejected: int = 2, *,
            base: dt.datetime | None = None) -> PackagingRun:
    """Packaging ending 2 hours before ``base`` (default now); the lot's expiry counts from that day."""
    run = packaging.packaging_record(
        lot=lot, actor=chain.lab1, run_number=f"PKG-{lot.lot_number}", started_at=t(0, -3, base=base),
        ended_at=t(0, -2, base=base), vials_packaged=vials, vials_rejected=rejected, storage_location=chain.location,
        reason=LATE,
    )
    return records.step_verify(record=run, actor=chain.lab2)


def lot_at(chain: Chain, status: str, *, volume: Decimal = D("400"), vials: int = 40) -> CMLot:
    """A lot brought to ``status`` (pooled, freeze_drying or packaged) through the services.

    qc_complete and beyond need qc's specification and approved results (qc's guards): see
    ``lot_qc_complete`` and ``lot_release``."""
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


# --- QC ---------------------------------------------------------------------------------------------------

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


SPEC_AUTHOR = "spec-author"


def sign_spec(officer, product: Product, items=None, effective_days_ago: float = 30,
              title: str = "CM release") -> Specification:
    """A specification drafted by another QC officer (``spec-author``) and signed into force by ``officer``
    ``effective_days_ago`` days ago (before the lots are pooled)."""
    author = get_user_model().objects.filter(username=SPEC_AUTHOR).first() or make_user(SPEC_AUTHOR, roles.QC_OFFICER)
    spec = specification_create(product=product, title=title, actor=author, items=items or SMALL_PANEL)
    # A specification is never backdated: it is signed on the day it takes effect (the clock moved there).
    with time_machine.travel(timezone.now() - timedelta(days=effective_days_ago), tick=False):
        return specification_approve(specification=spec, actor=officer, username=officer.username,
                                     password=PASSWORD)


def item(spec: Specification, test: str) -> SpecItem:
    return spec.items.get(test=test)


def enter(lot: CMLot, test: str, value: str, unit: str = "", *, analyst, actor=None, tested_at=None,
          **extra) -> QCResult:
    return result_enter(lot=lot, test=test, value=value, unit=unit, analyst=analyst, actor=actor or analyst,
                        tested_at=tested_at or timezone.now() - timedelta(hours=2), instrument="INS-1", **extra)


def approve(result: QCResult, officer) -> QCResult:
    return result_approve(result=result, actor=officer, username=officer.username, password=PASSWORD)


def pass_all(lot: CMLot, *, analyst, approver, skip=()) -> dict[str, QCResult]:
    """Enter a passing result for every panel item (except ``skip``) and approve each."""
    out = {}
    for test, (value, unit) in PASSING.items():
        if test in skip:
            continue
        out[test] = approve(enter(lot, test, value, unit, analyst=analyst), approver)
    return out


def lot_qc_complete(lot: CMLot, *, analyst, approver, officer) -> CMLot:
    """A packaged lot with every panel result passing (``analyst``, approved by ``approver``), moved to
    qc_complete by ``officer``."""
    pass_all(lot, analyst=analyst, approver=approver)
    return lots.lot_transition(lot=lot, to=LotStatus.QC_COMPLETE, actor=officer)


def lot_release(lot: CMLot, *, officer) -> CMLot:
    """Release a qc_complete lot with ``officer``'s signature, the audit trail reviewed up to now."""
    lot_sign_off(lot=lot, to=LotStatus.RELEASED, actor=officer, username=officer.username,
                 password=PASSWORD, audit_reviewed_through=chain_head().sequence)
    return CMLot.objects.select_related("product").get(pk=lot.pk)


# --- shipping ---------------------------------------------------------------------------------------------

# World lots are made a year back at most: their donors, banks and specifications are older than that.
WORLD_HISTORY_DAYS = 500
HOLD_REASON = "deviation DV-1"


@dataclass
class World:
    """Lots ready to ship and a consignee: lab staff make the lots, QC releases them, a coordinator ships.

    Each lot is made through the services from its own harvests (one per donor); its packaging is dated so
    that the product's shelf life gives the ``expiry`` asked for."""

    lab: object
    verifier: object
    analyst_approver: object
    qc: object
    coordinator: object
    product: Product
    location: StorageLocation
    consignee: Consignee
    counter: dict = field(default_factory=lambda: {"lot": 0, "donor": 0})

    def donor(self, code: str | None = None) -> CellSource:
        self.counter["donor"] += 1
        code = code or f"DN-{self.counter['donor']:04d}"
        existing = CellSource.objects.filter(code=code).first()
        if existing:
            return existing
        on = timezone.localdate() - timedelta(days=WORLD_HISTORY_DAYS)
        source = make_donor(self.lab, code, on=on)
        make_bank(self.lab, source, f"MCB-{code}", on=on)
        return source

    def _specified(self, product: Product) -> None:
        if not Specification.objects.filter(product=product, status=SpecStatus.IN_FORCE).exists():
            sign_spec(self.qc, product, effective_days_ago=WORLD_HISTORY_DAYS)

    def lot(
        self, *, vials: int = 10, donors: tuple[CellSource, ...] = (), expiry: date | None = None,
        status: str = LotStatus.RELEASED, on_hold: bool = False, product: Product | None = None,
    ) -> CMLot:
        """A lot pooled from one harvest per donor, freeze-dried, packaged into ``vials`` vials, tested and
        brought to ``status`` (qc_complete or released), put on hold if asked."""
        self.counter["lot"] += 1
        n = self.counter["lot"]
        product = product or self.product
        self._specified(product)
        donors = donors or (self.donor(),)
        expiry = expiry if expiry is not None else timezone.localdate() + dt.timedelta(days=300)
        # Packaging ends on the day the shelf life counts from (package() ends it 2 h before base).
        packaged = dt.datetime.combine(expiry - timedelta(days=product.shelf_life_days), dt.time(12), tzinfo=dt.UTC)
        if packaged > timezone.now():
            raise ValueError(f"expiry {expiry} is more than the shelf life away: the lot would be packaged later")
        base = packaged + timedelta(hours=2)
        chain = Chain(lab1=self.lab, lab2=self.verifier, qc=self.qc, product=product, location=self.location)
        harvests = []
        for i, donor in enumerate(donors):
            bank = CellBank.objects.get(code=f"MCB-{donor.code}")
            culture = make_conditioning_culture(self.lab, product, bank, code=f"CU-{n}-{i}", base=base)
            harvests.append((make_harvest(self.lab, culture, days_ago=2, verifier=self.verifier, base=base),
                             D("400")))
        lot = process(chain, pool(chain, harvests, pooled_at=t(1, base=base)), base=base)
        freeze_dry(chain, lot, vials=vials, base=base)
        package(chain, lot, vials=vials, rejected=0, base=base)
        lot = lot_qc_complete(CMLot.objects.get(pk=lot.pk), analyst=self.lab, approver=self.analyst_approver,
                              officer=self.qc)
        if status == LotStatus.RELEASED and expiry < timezone.localdate():
            # An expired lot was released while still in date (release refuses it after): on its last good day.
            with time_machine.travel(dt.datetime.combine(expiry, dt.time(12), tzinfo=dt.UTC)):
                lot = lot_release(lot, officer=self.qc)
        elif status == LotStatus.RELEASED:
            lot = lot_release(lot, officer=self.qc)
        elif status != LotStatus.QC_COMPLETE:
            raise ValueError(f"world lots are qc_complete or released, not {status}")
        if on_hold:
            lot_hold(lot=lot, actor=self.qc, reason=HOLD_REASON)
        return CMLot.objects.select_related("product").get(pk=lot.pk)

    def shipment(self, **extra) -> Shipment:
        return shipping.shipment_create(consignee=self.consignee, product=self.product, actor=self.coordinator,
                                        **extra)


def make_world(*, coordinator) -> World:
    """Lab staff (lab1, lab2), two QC officers (world-qc1 releases, world-qc2 approves results), a product
    shipped at 2–8 °C, a freezer and the consignee Klinik Nord."""
    lab = make_user("lab1", roles.LAB_STAFF)
    verifier = make_user("lab2", roles.LAB_STAFF)
    qc = make_user("world-qc1", roles.QC_OFFICER)
    approver = make_user("world-qc2", roles.QC_OFFICER)
    product = make_product(lab, transport_temperature_min_c=D("2"))
    location = StorageLocationFactory(actor=lab)
    consignee = ConsigneeFactory(actor=coordinator)
    return World(lab=lab, verifier=verifier, analyst_approver=approver, qc=qc, coordinator=coordinator,
                 product=product, location=location, consignee=consignee)


def vial_serials(lot: CMLot, *numbers: int) -> list[str]:
    """The serials of ``lot``'s vials with these sequence numbers, in the order asked."""
    by_sequence = dict(lot.vials.filter(sequence__in=numbers).values_list("sequence", "serial"))
    return [by_sequence[n] for n in numbers]


# --- temperature logs -------------------------------------------------------------------------------------


def clean_log(start: dt.datetime, *, samples: int = 12, step_minutes: int = 5, temperature: str = "5.0") -> bytes:
    """A logger CSV of ``samples`` readings at ``temperature`` every ``step_minutes`` from ``start``."""
    return log_with(start, [temperature] * samples, step_minutes=step_minutes)


def log_with(start: dt.datetime, temperatures: list[str], step_minutes: int = 5) -> bytes:
    """A logger CSV with one reading per temperature, ``step_minutes`` apart from ``start``."""
    lines = ["timestamp,temperature_c"]
    lines += [f"{(start + dt.timedelta(minutes=i * step_minutes)).isoformat()},{t}" for i, t in enumerate(temperatures)]
    return ("\n".join(lines) + "\n").encode()


def make_printer(actor, *, kind: str = "zpl", address: str, name: str = "", width: str = "50", height: str = "25",
                 material: str = "polypropylene, cryo-rated"):
    """A printer record through the service (lab staff); 50 x 25 mm stock fits the vial label."""
    from cmlims.printing.services import printer_create

    return printer_create(actor=actor, name=name or f"{kind} printer {address}", location="Packaging room",
                          kind=kind, address=address, stock_width_mm=Decimal(width), stock_height_mm=Decimal(height),
                          stock_material=material)
