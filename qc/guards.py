"""QC's preconditions for lot transitions, registered with batches.lifecycle from QcConfig.ready()."""

from __future__ import annotations

from batches.lifecycle import register_guard
from batches.models import LotStatus
from qc import selectors


def qc_complete_guard(lot, actor) -> list[dict]:
    """packaged → qc_complete: every mandatory item has an approved (latest valid) result."""
    return selectors.results_conditions(lot, need_pass=False)


def release_guard(lot, actor) -> list[dict]:
    """Rule 3 and rule 2 for the release signer."""
    return selectors.release_conditions(lot, actor)


def four_eyes_guard(lot, actor) -> list[dict]:
    """Reject and recall are signed under rule 2 as well (DESIGN.md roles table)."""
    return selectors.four_eyes_conditions(lot, actor)


def register() -> None:
    from cmlims.esign.services import register_content_checker
    from qc.signed_content import (
        LOT_SIGNOFF_V1,
        RESULT_APPROVAL_V1,
        lot_signature_status,
        lot_signature_statuses,
        lot_signoff_affected,
        result_signature_status,
    )

    register_content_checker(LOT_SIGNOFF_V1.split("/")[0] + "/", lot_signature_status, many=lot_signature_statuses,
                             affected=lot_signoff_affected)
    register_content_checker(RESULT_APPROVAL_V1.split("/")[0] + "/", result_signature_status)
    register_guard(LotStatus.QC_COMPLETE, qc_complete_guard)
    register_guard(LotStatus.RELEASED, release_guard)
    register_guard(LotStatus.REJECTED, four_eyes_guard)
    register_guard(LotStatus.RECALLED, four_eyes_guard)
