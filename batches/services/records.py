"""Second-person verification and voiding of manufacturing records (nothing is ever deleted)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cmlims.audit import audited_update, audited_void
from cmlims.exceptions import Conflict, field_error

from ..locks import row_lock
from ..models import (
    CellBank,
    CellSource,
    CMLot,
    Culture,
    Harvest,
    HarvestContribution,
    LyophilisationPhase,
    LyophilisationRun,
    PackagingRun,
    Passage,
    PerformedStep,
    Product,
    StorageLocation,
)
from .common import refuse_if_voided, require_lab_staff
from .lots import lot_void


def _conflict(code: str, detail: str) -> Conflict:
    return Conflict(detail, code=code, conditions=[{"code": code, "detail": detail}])


@transaction.atomic
def step_verify(*, record: PerformedStep, actor, reason: str = "") -> PerformedStep:
    """A second person confirms a performed step (bank, culture, passage, harvest, freeze-drying, packaging).

    The verifier is lab staff and never the person who performed it (211.188(b)).
    """
    require_lab_staff(actor, "Verifying a manufacturing step")
    if not isinstance(record, PerformedStep):
        raise field_error("record", f"{type(record).__name__} has no verifiable step")
    record = row_lock(type(record), record.pk)
    refuse_if_voided(record)
    if record.performed_by_id is None:
        raise _conflict("wrong_order", f"{record} has not been performed yet")
    if record.performed_by_id == actor.pk:
        raise _conflict("same_person", f"{record} must be verified by a second person, not by who performed it")
    if record.verified_by_id:
        raise _conflict("already_verified", f"{record} is already verified")
    if isinstance(record, LyophilisationRun) and not record.is_complete:
        raise _conflict("wrong_order", f"run {record} is not completed yet")
    return audited_update(record, actor=actor, reason=reason, verified_by=actor, verified_at=timezone.now())


@transaction.atomic
def culture_passages_verify(*, culture: Culture, actor, reason: str = "") -> list[Passage]:
    """A second person verifies every performed, unverified, live passage of ``culture`` (all or none: one
    passage the actor performed refuses the lot, as ``step_verify`` does for one)."""
    pending = list(culture.passages.filter(performed_by__isnull=False, verified_by__isnull=True,
                                           voided_at__isnull=True).order_by("passage_number"))
    if not pending:
        raise _conflict("already_verified", f"culture {culture} has no passage waiting for verification")
    return [step_verify(record=passage, actor=actor, reason=reason) for passage in pending]


def _in_use(record) -> str | None:
    """Why ``record`` cannot be voided (something still live depends on it), or None."""
    live = {"voided_at__isnull": True}
    if isinstance(record, Harvest):
        if HarvestContribution.objects.filter(harvest=record, lot__voided_at__isnull=True).exists():
            return "volume from this harvest is pooled into a lot"
    elif isinstance(record, Culture):
        if record.harvests.filter(**live).exists() or record.passages.filter(**live).exists():
            return "the culture has passages or harvests; void those first"
    elif isinstance(record, Passage):
        latest = record.culture.passages.filter(**live).order_by("-passage_number").first()
        if latest and latest.pk != record.pk:
            return "later passages build on this one's population doublings; void the latest first"
        if record.culture.status != Culture.Status.ACTIVE:
            return "the culture has moved past expansion"
    elif isinstance(record, CellBank):
        if record.cultures.filter(**live).exists() or record.derived_banks.filter(**live).exists():
            return "cultures or working banks come from this bank"
    elif isinstance(record, CellSource):
        if record.banks.filter(**live).exists():
            return "cell banks come from this donor"
    elif isinstance(record, Product):
        if record.lots.filter(**live).exists() or record.cultures.filter(**live).exists():
            return "lots or cultures use this product"
    elif isinstance(record, StorageLocation):
        if record.vials.exists() or record.children.filter(**live).exists():
            return "the location holds vials or other locations"
    elif isinstance(record, LyophilisationRun | PackagingRun | LyophilisationPhase):
        run = record.run if isinstance(record, LyophilisationPhase) else record
        if isinstance(record, PackagingRun) or run.is_complete:
            return "completed runs are corrected with a reason, not voided"
    return None


@transaction.atomic
def record_void(*, record, actor, reason: str):
    """Void a manufacturing record entered in error (with a reason). Lots use ``lot_void``."""
    require_lab_staff(actor, "Voiding a record")
    if isinstance(record, CMLot):
        return lot_void(lot=record, actor=actor, reason=reason)
    record = row_lock(type(record), record.pk)
    blocker = _in_use(record)
    if blocker:
        raise _conflict("in_use", f"{record} cannot be voided: {blocker}")
    return audited_void(record, actor=actor, reason=reason)
