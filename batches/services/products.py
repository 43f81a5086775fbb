"""Product master data and storage locations (created and changed by lab staff, audited)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from cmlims import roles
from cmlims.audit import audited_update
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, field_error

from ..locks import product_lock
from ..models import Product, StorageLocation
from .common import change_begin, record_create, refuse_if_voided, update_fields

PRODUCT_FIELDS = {
    "name", "gtin", "description", "shelf_life_days", "storage_temperature_min_c", "storage_temperature_max_c",
    "transport_temperature_min_c", "transport_temperature_max_c", "transport_excursion_allowed_minutes",
    "max_passage", "max_population_doublings", "min_viability_percent", "conditioning_min_hours",
    "conditioning_max_hours", "max_hold_hours", "nominal_fill_volume_ml", "requires_second_person_verification",
}
LOCATION_FIELDS = {
    "code", "name", "kind", "parent", "temperature_min_c", "temperature_max_c", "released_stock_location",
}
# The process limits the culture, harvest and pooling checks read: in force only once a QC officer who did not
# set them approved them (design rule 2), like a specification.
LIMIT_FIELDS = ("max_passage", "max_population_doublings", "min_viability_percent", "conditioning_min_hours",
                "conditioning_max_hours", "max_hold_hours")
PRODUCT_LIMITS_V1 = "product-limits/1"


@dataclass(frozen=True)
class ProductLimits:
    """The approved process limits of a product (version ``version``)."""

    version: int
    max_passage: int
    max_population_doublings: Decimal
    min_viability_percent: Decimal
    conditioning_min_hours: Decimal
    conditioning_max_hours: Decimal
    max_hold_hours: Decimal


def _as_text(name: str, value) -> str:
    # As the database stores it (72 and 72.0 are 72.00), so a value set in memory compares equal to one read back.
    places = getattr(Product._meta.get_field(name), "decimal_places", 0)
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places))) if places else str(value)


def product_limits_proposed(product: Product) -> dict[str, str]:
    """The limits as the product record says now (lab staff's latest values), as text."""
    return {name: _as_text(name, getattr(product, name)) for name in LIMIT_FIELDS}


def product_limits_pending(product: Product) -> dict[str, list]:
    """{field: [in force, proposed]} for every limit changed since the last approval."""
    proposed = product_limits_proposed(product)
    approved = product.limits_approved or {}
    return {name: [approved.get(name), value] for name, value in proposed.items() if approved.get(name) != value}


def product_limits_in_force(product: Product) -> ProductLimits:
    """The last approved limits: what every process check uses, whatever lab staff changed since.
    409 ``product_limits_not_approved`` while no version was ever approved."""
    approved = product.limits_approved or {}
    if not all(name in approved for name in LIMIT_FIELDS):
        detail = f"the process limits of {product} have not been approved by a QC officer yet"
        raise Conflict(detail, code="product_limits_not_approved",
                       conditions=[{"code": "product_limits_not_approved", "detail": detail}])
    return ProductLimits(version=product.limits_version, max_passage=int(approved["max_passage"]),
                         **{name: Decimal(approved[name]) for name in LIMIT_FIELDS if name != "max_passage"})


def product_limit_author_ids(product: Product) -> set[int]:
    """Who set or changed a limit since the version in force was approved (from the audit trail)."""
    from cmlims.models import AuditEntry

    entries = AuditEntry.objects.filter(object_type="batches.product", object_id=str(product.pk),
                                        user_id__isnull=False)
    if product.limits_approval_id:
        entries = entries.filter(sequence__gt=product.limits_approval.chain_sequence)
    return {user_id for user_id, action, changes in entries.values_list("user_id", "action", "changes")
            if action == "created" or set(changes or {}) & set(LIMIT_FIELDS)}


def product_limits_content(product: Product, version: int) -> dict:
    """What the approval signs (field list ``product-limits/1``)."""
    return {"product": product.name, "gtin": product.gtin, "version": version, **product_limits_proposed(product)}


def _refuse_own_limits(product: Product, actor) -> None:
    detail = f"{actor.get_username()} set or changed limits of {product}: another QC officer approves them"
    raise Conflict(detail, code="own_product_limits", conditions=[{"code": "own_product_limits", "detail": detail}])


def product_limits_approve(*, product: Product, actor, username: str, password: str, reason: str = "",
                           meaning: str | None = None) -> Product:
    """A QC officer puts the product's current limits in force as the next version, signed "product limits
    approved"; nobody approves limits they set or changed (409 ``own_product_limits``), nothing to approve
    is 409 ``product_limits_unchanged``."""
    roles.require_role(actor, roles.QC_OFFICER, "Approving product limits")
    if product.limits_version and not product_limits_pending(product):
        detail = f"the limits of {product} are those of version {product.limits_version} already"
        raise Conflict(detail, code="product_limits_unchanged",
                       conditions=[{"code": "product_limits_unchanged", "detail": detail}])
    if actor.pk in product_limit_author_ids(product):
        _refuse_own_limits(product, actor)
    grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                       meaning=Meaning.PRODUCT_LIMITS_APPROVED, meaning_sent=meaning or None,
                                       reason=reason)
    with transaction.atomic():
        product = product_lock(product)
        refuse_if_voided(product)
        if actor.pk in product_limit_author_ids(product):  # again under the lock
            _refuse_own_limits(product, actor)
        version = product.limits_version + 1
        signature = signature_record(grant=grant, subject=product, signer=actor,
                                     meaning=Meaning.PRODUCT_LIMITS_APPROVED, reason=reason,
                                     content=product_limits_content(product, version),
                                     field_list_version=PRODUCT_LIMITS_V1)
        return audited_update(product, actor=actor, reason=reason or f"process limits version {version} approved",
                              limits_approved=product_limits_proposed(product), limits_version=version,
                              limits_approval=signature)


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
