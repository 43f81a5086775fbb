"""Product master data and storage locations (created and changed by lab staff, audited)."""

from __future__ import annotations

from django.db import transaction

from cmlims.exceptions import field_error

from ..models import Product, StorageLocation
from .common import change_begin, record_create, update_fields

PRODUCT_FIELDS = {
    "name", "gtin", "description", "shelf_life_days", "storage_temperature_min_c", "storage_temperature_max_c",
    "transport_temperature_min_c", "transport_temperature_max_c", "transport_excursion_allowed_minutes",
    "max_passage", "max_population_doublings", "min_viability_percent", "conditioning_min_hours",
    "conditioning_max_hours", "max_hold_hours", "nominal_fill_volume_ml", "requires_second_person_verification",
}
LOCATION_FIELDS = {
    "code", "name", "kind", "parent", "temperature_min_c", "temperature_max_c", "released_stock_location",
}


@transaction.atomic
def product_create(*, actor, reason: str = "", **values) -> Product:
    return record_create(Product, actor=actor, action="Creating a product", allowed=PRODUCT_FIELDS, values=values,
                         reason=reason)


@transaction.atomic
def product_update(*, product: Product, actor, reason: str = "", **values) -> Product:
    product = change_begin(product, actor=actor, action="Changing a product")
    return update_fields(product, allowed=PRODUCT_FIELDS, values=values, actor=actor, reason=reason)


@transaction.atomic
def storage_location_create(*, actor, reason: str = "", **values) -> StorageLocation:
    return record_create(StorageLocation, actor=actor, action="Creating a storage location", allowed=LOCATION_FIELDS,
                         values=values, reason=reason)


@transaction.atomic
def storage_location_update(*, location: StorageLocation, actor, reason: str = "", **values) -> StorageLocation:
    location = change_begin(location, actor=actor, action="Changing a storage location")
    target = values.get("released_stock_location")
    if target is not None and getattr(target, "pk", target) == location.pk:
        raise field_error("released_stock_location", "must be another store: released stock leaves quarantine")
    return update_fields(location, allowed=LOCATION_FIELDS, values=values, actor=actor, reason=reason)
