"""The benchmark dataset (``benchmarks.dataset``) at its tiny scale: the counts it promises, shipments in a
consistent state, signatures that still match their records, and an audit chain ``verify_audit`` accepts."""

from __future__ import annotations

from collections import Counter

import pytest

from batches.models import CMLot, Vial
from batches.shipping.models import CustodyEvent, Shipment, ShipmentVial, TemperatureLog
from batches.shipping.signed import signed_content
from benchmarks import dataset, dataset_shipping
from cmlims.esign.models import Signature
from cmlims.esign.services import signature_status
from cmlims.verification import audit_chain_verify
from qc.models import QCResult

pytestmark = pytest.mark.django_db

TINY = dataset.SCALES["tiny"]


def _bench_shipments():
    return Shipment.objects.filter(consignee__name__startswith="Bench clinic").select_related("consignee", "product")


def _check_counts() -> None:
    lots = CMLot.objects.filter(lot_number__startswith="BM")
    assert lots.count() == TINY.lots
    assert Vial.objects.filter(lot__in=lots).count() == TINY.lots * TINY.vials_per_lot
    assert QCResult.objects.filter(lot__in=lots).count() == TINY.lots * TINY.qc_per_lot
    assert _bench_shipments().count() == TINY.shipments
    assert dataset.built_scale() == "tiny" and dataset_shipping.marker_present()


def _check_states() -> None:
    allocations = ShipmentVial.objects.filter(shipment__in=_bench_shipments(), released_at__isnull=True)
    counts = Counter(allocations.values_list("vial_id", flat=True))
    assert counts and max(counts.values()) == 1  # no vial in two shipments
    statuses = Counter(_bench_shipments().values_list("status", flat=True))
    assert set(statuses) == {"shipped", "received"} and statuses["received"] > statuses["shipped"]
    for shipment in _bench_shipments():
        vials = Vial.objects.filter(shipment_allocations__shipment=shipment)
        assert set(vials.values_list("status", flat=True)) == {shipment.status}
        assert vials.count() == dataset_shipping.VIALS_PER_SHIPMENT
        assert set(CMLot.objects.filter(vials__in=vials).values_list("status", flat=True)) <= {"released", "expired"}
        kinds = list(CustodyEvent.objects.filter(shipment=shipment).order_by("occurred_at", "id")
                     .values_list("kind", flat=True))
        logs = TemperatureLog.objects.filter(shipment=shipment, voided_at__isnull=True)
        if shipment.status == "received":
            assert kinds == ["packed", "handed_to_courier", "delivered", "received"]
            (log,) = logs
            assert log.readings.count() == log.sample_count and not log.excursion
            assert shipment.packed_at < shipment.shipped_at < shipment.delivered_at < shipment.received_at
        else:
            assert kinds == ["packed", "handed_to_courier"] and not logs.exists()
    not_shipped = Vial.objects.filter(lot__lot_number__startswith="BM", shipment_allocations__isnull=True)
    assert set(not_shipped.values_list("status", flat=True)) == {"available"}


def _check_signatures() -> None:
    checked = 0
    for shipment in _bench_shipments():
        serials = list(Vial.objects.filter(shipment_allocations__shipment=shipment).values_list("serial", flat=True))
        for signature in Signature.objects.filter(object_id=str(shipment.pk), meaning__in=["shipped", "received"],
                                                  content_type__model="shipment"):
            status = signature_status(signature, signed_content(shipment, meaning=signature.meaning, serials=serials))
            assert not status.changed_after_signing, status.changed_fields
            checked += 1
    assert checked > TINY.shipments


def test_the_tiny_build_is_consistent_and_its_whole_trail_verifies():
    """One build (it takes a while: the demo seed, then 40 lots and 16 shipments), every check on it."""
    dataset.build(TINY)
    _check_counts()
    _check_states()
    _check_signatures()
    report = audit_chain_verify()
    assert report.ok, report.summary()
    assert report.entries > TINY.lots * (TINY.vials_per_lot + TINY.qc_per_lot)
