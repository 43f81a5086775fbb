"""Lot sign-off: release, reject, recall, each an electronic signature (Part 11) that moves the lot through
``batches.services.lots.lot_set_status_signed`` — the only way to reach those statuses.

Order of checks: role (403), signature components (400/423, committed and audited even though the sign-off
is refused), then — with the lot row locked — every unmet condition at once (409), then the signature and
the status change in one transaction. Two officers signing at once: the second waits for the lock, finds
the lot already released and gets 409 (rule 10).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from batches.lifecycle import unmet_conditions
from batches.locks import lot_lock
from batches.models import CMLot, LotStatus
from batches.services.lots import lot_set_status_signed
from cmlims import roles
from cmlims.audit import Action, audited_save, chain_head
from cmlims.esign.models import Meaning, Signature
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, NotFound, field_error
from qc.models import LotAuditReview
from qc.selectors import audit_review_conditions, lot_audit_entries, lot_review_latest_sequence
from qc.signed_content import LOT_SIGNOFF_V2, lot_content_v2

MEANINGS = {LotStatus.RELEASED: Meaning.RELEASED, LotStatus.REJECTED: Meaning.REJECTED,
            LotStatus.RECALLED: Meaning.RECALLED}


def lot_for_signoff(lot_number: str) -> CMLot:
    lot = CMLot.objects.select_related("product").filter(lot_number=lot_number).first()
    if lot is None:
        raise NotFound(f"lot {lot_number} does not exist")
    return lot


def _record_review(lot: CMLot, actor, through: int) -> LotAuditReview:
    previous = LotAuditReview.objects.filter(lot=lot).order_by("-reviewed_through").first()
    after = previous.reviewed_through if previous else 0
    review = LotAuditReview(
        lot=lot, reviewer=actor, reviewed_at=timezone.now(), reviewed_from=after + 1, reviewed_through=through,
        entries_reviewed=lot_audit_entries(lot, after=after, through=through).count(),
    )
    return audited_save(review, actor=actor, action=Action.REVIEWED)


@transaction.atomic
def lot_audit_review_confirm(*, lot: CMLot, actor, reviewed_through: int) -> LotAuditReview:
    """The officer confirms having read the lot's audit trail up to ``reviewed_through`` (Annex 11 §9)."""
    roles.require_role(actor, roles.QC_OFFICER, "Reviewing a lot's audit trail")
    lot = lot_lock(lot)
    _check_through(lot, reviewed_through, field="reviewed_through")
    return _record_review(lot, actor, reviewed_through)


def _check_through(lot: CMLot, through: int, *, field: str) -> None:
    """``field`` names the input that said ``through`` (the sign-off's and the review's differ)."""
    if through > chain_head().sequence:
        raise field_error(field, f"#{through} is beyond the newest audit entry")
    latest = lot_review_latest_sequence(lot)
    if through < latest:
        raise Conflict(
            f"the lot's audit trail has entries after #{through}; review them first",
            code="audit_review_stale",
            conditions=[{"code": "audit_review_stale",
                         "detail": f"the lot's audit trail has entries after #{through} (newest #{latest})"}],
        )


def lot_sign_off(
    *, lot: CMLot, to: str, actor, username: str, password: str, reason: str = "",
    meaning: str | None = None, audit_reviewed_through: int | None = None,
) -> Signature:
    """Release, reject or recall ``lot`` with the caller's electronic signature."""
    if to not in MEANINGS:
        raise field_error("to", f"sign-off moves a lot to one of {', '.join(MEANINGS)}")
    expected = MEANINGS[to]
    roles.require_role(actor, roles.QC_OFFICER, f"Signing a lot {expected}")
    grant = signing_credentials_verify(signer=actor, username=username, password=password, meaning=expected,
                                       meaning_sent=meaning or None, reason=reason, subject=lot)
    with transaction.atomic():
        lot = lot_lock(lot)
        conditions = unmet_conditions(lot, to, actor)
        review_conditions, review = audit_review_conditions(lot, actor, audit_reviewed_through,
                                                            required=(to == LotStatus.RELEASED))
        conditions += review_conditions
        if conditions:
            raise Conflict(
                f"lot {lot.lot_number} cannot be {expected}: " + "; ".join(c["detail"] for c in conditions),
                code="signoff_refused", conditions=conditions,
            )
        if review is None and audit_reviewed_through is not None:
            review = _record_review(lot, actor, audit_reviewed_through)
        signature = signature_record(grant=grant, subject=lot, signer=actor, meaning=expected, reason=reason,
                                     content=lot_content_v2(lot, review), field_list_version=LOT_SIGNOFF_V2)
        lot_set_status_signed(lot=lot, to=to, actor=actor, reason=reason or f"{expected} by e-signature",
                              signature=signature)
    return signature
