"""Shipping services: every write of the shipping app, each in one transaction with its audit entries.

Keyword-only, typed, named ``<noun>_<verb>``; callers (admin, API, demo) stay thin.
"""

from .allocation import shipment_allocate_count, shipment_allocate_scans, shipment_release_vials
from .consignees import consignee_create, consignee_update, consignee_void
from .shipments import (
    shipment_cancel,
    shipment_create,
    shipment_deliver,
    shipment_pack,
    shipment_receive,
    shipment_ship,
    shipment_update,
)
from .status import shipment_set_status
from .temperature import shipment_temperature_log_upload

__all__ = [
    "consignee_create", "consignee_update", "consignee_void",
    "shipment_allocate_count", "shipment_allocate_scans", "shipment_cancel", "shipment_create",
    "shipment_deliver", "shipment_pack", "shipment_receive", "shipment_release_vials", "shipment_set_status",
    "shipment_ship",
    "shipment_temperature_log_upload", "shipment_update",
]
