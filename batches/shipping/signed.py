"""What the shipping signatures cover (Part 11 §11.70: the signature is linked to its record by a hash of
these fields), and their status now: a covered field edited after signing shows "changed after signing"."""

from __future__ import annotations

from typing import Any

from batches.shipping.models import Shipment
from cmlims.esign.models import Meaning, Signature
from cmlims.esign.services import signature_manifest, signature_status

SIGNED_FIELDS = {Meaning.SHIPPED: "shipment-shipped-v1", Meaning.RECEIVED: "shipment-received-v1",
                 Meaning.LOGGER_FILE_REPLACED: "temperature-log-replaced-v1"}


def signed_content(shipment: Shipment, *, meaning: str, serials: list[str]) -> dict[str, Any]:
    """What a "shipped" or "received" signature covers (field list ``SIGNED_FIELDS[meaning]``): what left
    the site and with whom; a receipt adds who received it. Recomputed later to show "changed after signing"."""
    content = {
        "reference": shipment.reference,
        "sscc": shipment.sscc,
        "consignee": shipment.consignee.name,
        "consignee_id": shipment.consignee_id,
        "product_gtin": shipment.product.gtin,
        "vials": sorted(serials),
        "courier": shipment.courier,
        "tracking_number": shipment.tracking_number,
        "transport_range_c": [shipment.transport_temperature_min_c, shipment.transport_temperature_max_c],
    }
    if meaning == Meaning.RECEIVED:
        content["received_by_name"] = shipment.received_by_name
        content["received_at"] = shipment.received_at
    return content


def shipment_signature_manifests(shipment: Shipment, signatures: list[Signature], serials: list[str]) -> list[dict]:
    """Printed name, UTC time, meaning — and whether what was signed changed since (recomputed content)."""
    return [
        signature_manifest(sig, signature_status(sig, signed_content(shipment, meaning=sig.meaning, serials=serials)))
        for sig in signatures
    ]
