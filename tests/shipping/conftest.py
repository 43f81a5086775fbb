"""Test data for shipping: a product, donors, lots with vials, consignees and a shipping coordinator.

Records are written through the audit API (``audited_create``), as the services write them; lots are
put straight into the status a test needs (released, on hold, expired) because the sign-off itself is
the QC app's subject, tested there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.utils import timezone

from batches.models import (
    CellBank,
    CellSource,
    CMLot,
    Culture,
    Harvest,
    HarvestContribution,
    LotStatus,
    LyophilisationRun,
    PackagingRun,
    Product,
    StorageLocation,
    Vial,
)
from batches.shipping import services
from cmlims import roles
from cmlims.audit import audited_bulk_create, audited_create
from tests.conftest import PASSWORD

D = Decimal


def ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


@dataclass
class World:
    lab: object
    coordinator: object
    product: Product
    location: StorageLocation
    consignee: object
    counter: dict = field(default_factory=lambda: {"lot": 0, "donor": 0})

    def donor(self, code: str | None = None) -> CellSource:
        self.counter["donor"] += 1
        code = code or f"DN-{self.counter['donor']:04d}"
        existing = CellSource.objects.filter(code=code).first()
        if existing:
            return existing
        source = audited_create(
            CellSource, actor=self.lab, code=code, tissue=CellSource.Tissue.UMBILICAL_CORD,
            collection_date=timezone.localdate() - dt.timedelta(days=90), consent_status="given",
            consent_recorded_on=timezone.localdate() - dt.timedelta(days=91), eligibility_status="eligible",
            eligibility_determined_on=timezone.localdate() - dt.timedelta(days=80),
        )
        audited_create(
            CellBank, actor=self.lab, code=f"MCB-{code}", kind="master", source=source, passage_at_freeze=2,
            frozen_on=timezone.localdate() - dt.timedelta(days=60), vials_frozen=10, vials_on_hand=10,
        )
        return source

    def lot(
        self, *, vials: int = 10, donors: tuple[CellSource, ...] = (), expiry: dt.date | None = None,
        status: str = LotStatus.RELEASED, on_hold: bool = False, product: Product | None = None,
    ) -> CMLot:
        """A lot pooled from one harvest per donor, freeze-dried and packaged into ``vials`` vials."""
        self.counter["lot"] += 1
        n = self.counter["lot"]
        product = product or self.product
        donors = donors or (self.donor(),)
        lot = audited_create(
            CMLot, actor=self.lab, lot_number=f"CM26-{n:04d}", product=product, pooled_at=ago(10),
            pooled_by=self.lab, status=status, on_hold=on_hold, hold_reason="deviation DV-1" if on_hold else "",
            expiry=expiry if expiry is not None else timezone.localdate() + dt.timedelta(days=300),
        )
        for i, donor in enumerate(donors):
            bank = CellBank.objects.get(code=f"MCB-{donor.code}")
            culture = audited_create(Culture, actor=self.lab, code=f"CU-{n}-{i}", product=product, bank=bank,
                                     started_at=ago(30), vessel="CellSTACK 5", medium_lot="MED-1")
            harvest = audited_create(Harvest, actor=self.lab, culture=culture, sequence=1,
                                     conditioning_started_at=ago(14), conditioning_ended_at=ago(12),
                                     volume_ml=D("500"), hold_temperature_c=D("4"))
            audited_create(HarvestContribution, actor=self.lab, lot=lot, harvest=harvest, volume_ml=D("400"),
                           added_by=self.lab)
        run = audited_create(LyophilisationRun, actor=self.lab, run_number=f"LYO-{n}", lot=lot, dryer="LYO-A",
                             recipe="CM-1ML", recipe_version="3", vials_loaded=vials, fill_volume_ml=D("0.9"))
        packaging = audited_create(PackagingRun, actor=self.lab, run_number=f"PKG-{n}", lot=lot,
                                   lyophilisation_run=run, started_at=ago(5), ended_at=ago(5),
                                   vials_packaged=vials, storage_location=self.location)
        audited_bulk_create(
            Vial,
            [Vial(serial=f"S{n:03d}{i:05d}", lot=lot, packaging_run=packaging, sequence=i,
                  storage_location=self.location) for i in range(1, vials + 1)],
            actor=self.lab,
        )
        return lot

    def shipment(self, **extra):
        return services.shipment_create(consignee=self.consignee, product=self.product, actor=self.coordinator,
                                        **extra)


def make_product(actor, *, name="MSC-CM lyophilisate 1 mL", gtin="09506000134352") -> Product:
    return audited_create(
        Product, actor=actor, name=name, gtin=gtin, shelf_life_days=365,
        storage_temperature_min_c=D("-25"), storage_temperature_max_c=D("-15"),
        transport_temperature_min_c=D("2"), transport_temperature_max_c=D("8"),
        transport_excursion_allowed_minutes=30, max_passage=5, max_population_doublings=D("20"),
    )


@pytest.fixture
def coordinator(make_user):
    return make_user("ship1", roles.SHIPPING_COORDINATOR, first_name="Sam", last_name="Shipper", is_staff=True)


@pytest.fixture
def world(make_user, coordinator) -> World:
    lab = make_user("lab1", roles.LAB_STAFF)
    product = make_product(lab)
    location = audited_create(StorageLocation, actor=lab, code="FRZ-01", name="Freezer 1", kind="freezer")
    consignee = services.consignee_create(
        actor=coordinator, name="Klinik Nord", kind="clinic", address_line1="Hafenstrasse 1", postal_code="20095",
        city="Hamburg", country="DE", contact_name="Dr. A. Berg", contact_email="berg@example.org",
    )
    return World(lab=lab, coordinator=coordinator, product=product, location=location, consignee=consignee)


def sign(user, meaning: str, reason: str = "") -> dict:
    return {"username": user.username, "password": PASSWORD, "meaning": meaning, "reason": reason}


def clean_log(start: dt.datetime, *, samples: int = 12, step_minutes: int = 5, temperature: str = "5.0") -> bytes:
    lines = ["timestamp,temperature_c"]
    lines += [f"{(start + dt.timedelta(minutes=i * step_minutes)).isoformat()},{temperature}" for i in range(samples)]
    return ("\n".join(lines) + "\n").encode()


def log_with(start: dt.datetime, temperatures: list[str], step_minutes: int = 5) -> bytes:
    lines = ["timestamp,temperature_c"]
    lines += [f"{(start + dt.timedelta(minutes=i * step_minutes)).isoformat()},{t}" for i, t in enumerate(temperatures)]
    return ("\n".join(lines) + "\n").encode()
