"""Specifications: drafted, then signed into force by a QC officer ("specification approved")."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from batches.locks import product_lock
from batches.models import Product
from cmlims import roles
from cmlims.audit import audited_create, audited_update
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, field_error
from cmlims.timing import FUTURE_TOLERANCE
from qc.locks import spec_item_lock, specification_lock, specifications_lock
from qc.models import Specification, SpecItem, SpecStatus
from qc.selectors import specification_author_ids
from qc.signed_content import SPECIFICATION_V1, specification_content

ITEM_FIELDS = ("order", "test", "method", "unit", "limit_kind", "lower", "upper", "lower_inclusive",
               "upper_inclusive", "allowed_values", "passing_values", "mandatory", "demo_limit", "source")


def _require_draft(specification: Specification) -> None:
    if specification.status != SpecStatus.DRAFT:
        raise Conflict(f"{specification} is {specification.status}; a change needs a new version",
                       code="specification_not_draft",
                       conditions=[{"code": "specification_not_draft", "detail": f"{specification} is approved"}])


@transaction.atomic
def specification_create(*, product: Product, title: str, actor, items: list[dict] | None = None,
                         notes: str = "") -> Specification:
    """A new draft version (the next number for the product), optionally with its items."""
    roles.require_role(actor, roles.QC_OFFICER, "Drafting a specification")
    product_lock(product)  # serialise version numbering per product
    version = (Specification.objects.filter(product=product).aggregate(v=Max("version"))["v"] or 0) + 1
    specification = audited_create(Specification, actor=actor, product=product, version=version, title=title,
                                   notes=notes, created_by=actor)
    for index, item in enumerate(items or [], start=1):
        spec_item_add(specification=specification, actor=actor, **({"order": index} | item))
    return specification


@transaction.atomic
def spec_item_add(*, specification: Specification, actor, **fields) -> SpecItem:
    roles.require_role(actor, roles.QC_OFFICER, "Changing a specification")
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise field_error(sorted(unknown)[0], "not a field of a specification item")
    _require_draft(specification_lock(specification))
    return audited_create(SpecItem, actor=actor, specification=specification, **fields)


@transaction.atomic
def spec_item_update(*, item: SpecItem, actor, **fields) -> SpecItem:
    roles.require_role(actor, roles.QC_OFFICER, "Changing a specification")
    _require_draft(specification_lock(item.specification_id))
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise field_error(sorted(unknown)[0], "not a field of a specification item")
    return audited_update(spec_item_lock(item), actor=actor, **fields)


def specification_approve(
    *, specification: Specification, actor, username: str, password: str, reason: str = "",
    effective_from: datetime | None = None, meaning: str | None = None,
) -> Specification:
    """Sign the draft into force. The version it replaces stays in force for lots pooled before this one's
    effective time. ``effective_from`` defaults to now; a future date is refused (nothing is signed ahead), and
    so is a backdated one: a version in force before its approval would change, after the fact, which
    specification lots already pooled are tested against. ``meaning``, if sent, must be "specification
    approved"."""
    roles.require_role(actor, roles.QC_OFFICER, "Approving a specification")
    now = timezone.now()
    effective = effective_from or now
    if effective > now:
        raise field_error("effective_from", "cannot be in the future")
    if effective < now - FUTURE_TOLERANCE:  # the same drift between clocks as for step times, no more
        raise field_error("effective_from", f"must not be before its approval ({now.astimezone(UTC):%Y-%m-%d %H:%M} "
                                            "UTC): a specification is not put in force retroactively")
    grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                       meaning=Meaning.SPECIFICATION_APPROVED, meaning_sent=meaning or None,
                                       reason=reason, subject=specification)
    with transaction.atomic():
        spec = specification_lock(specification)
        _require_draft(spec)
        if not spec.items.exists():
            raise Conflict(f"{spec} has no items", code="specification_empty",
                           conditions=[{"code": "specification_empty", "detail": "a specification needs items"}])
        if actor.pk in specification_author_ids(spec):  # rule 2: nobody approves their own work
            detail = f"{actor.get_username()} drafted or changed {spec}: another QC officer signs it into force"
            raise Conflict(detail, code="own_specification",
                           conditions=[{"code": "own_specification", "detail": detail}])
        signature = signature_record(grant=grant, subject=spec, signer=actor, meaning=Meaning.SPECIFICATION_APPROVED,
                                     reason=reason, content=specification_content(spec),
                                     field_list_version=SPECIFICATION_V1)
        for previous in specifications_lock(Specification.objects.filter(product=spec.product_id,
                                                                         status=SpecStatus.IN_FORCE)):
            audited_update(previous, actor=actor, reason=f"superseded by version {spec.version}",
                           status=SpecStatus.SUPERSEDED)
        return audited_update(spec, actor=actor, reason=reason, status=SpecStatus.IN_FORCE,
                              effective_from=effective, approval=signature)


@transaction.atomic
def specification_update(*, specification: Specification, actor, reason: str = "", title: str | None = None,
                         notes: str | None = None) -> Specification:
    """Title and notes of a draft (an approved version is changed by a new version, never edited)."""
    roles.require_role(actor, roles.QC_OFFICER, "Changing a specification")
    spec = specification_lock(specification)
    _require_draft(spec)
    values = {k: v for k, v in (("title", title), ("notes", notes)) if v is not None}
    return audited_update(spec, actor=actor, reason=reason, **values)
