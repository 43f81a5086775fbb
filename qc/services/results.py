"""QC results: entry (with unit conversion and computed pass/fail), correction, retest, approval.

A result is never overwritten: a correction is a new result that supersedes the original (reason kept);
a retest is a new result linked to the original, which stays valid and visible. A failing result opens
an OOS investigation in the same transaction (rule 5).
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from datetime import datetime

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from batches.locks import lot_lock
from batches.models import CMLot, LotStatus
from cmlims import roles
from cmlims.audit import audited_save, audited_update, late_entry
from cmlims.esign.models import Meaning
from cmlims.esign.services import SigningGrant, signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, InvalidInput, NotFound, field_error
from cmlims.investigations.models import Kind
from cmlims.investigations.services import investigation_open
from cmlims.timing import occurred_at_check
from qc.evaluation import ValueProblem, evaluate
from qc.locks import result_lock
from qc.models import QCResult, ResultSource, ResultStatus, SpecItem
from qc.selectors import lot_specification, related_lot_numbers
from qc.signed_content import RESULT_APPROVAL_V1, result_content

ENTRY_ROLES = (roles.LAB_STAFF, roles.QC_OFFICER, roles.INTEGRATION)
ANALYST_ROLES = (roles.LAB_STAFF, roles.QC_OFFICER)
# Results are recorded while the lot is made and tested; after sign-off the record is closed.
OPEN_STATUSES = (LotStatus.POOLED, LotStatus.FREEZE_DRYING, LotStatus.PACKAGED, LotStatus.QC_COMPLETE)
FUTURE_TOLERANCE_S = 300


def lot_open_problem(lot: CMLot) -> str | None:
    if lot.voided_at is not None:
        return f"lot {lot.lot_number} is voided"
    if lot.status not in OPEN_STATUSES:
        return f"lot {lot.lot_number} is {lot.status}; results are recorded up to qc_complete"
    return None


def tested_at_problem(tested_at: datetime | None) -> str | None:
    if tested_at is None:
        return "required"
    if timezone.is_naive(tested_at):
        return "needs a UTC offset (ISO 8601, e.g. 2026-05-04T10:30:00+02:00)"
    if (tested_at - timezone.now()).total_seconds() > FUTURE_TOLERANCE_S:
        return "cannot be in the future"
    return None


def tested_at_previous(lot: CMLot) -> tuple[datetime | None, str]:
    """The step a result's ``tested_at`` may not precede: the pooling of the lot (a sample is taken from the
    pooled bulk or its vials). A retest is not held to its original's time: a retained sample may have been
    tested earlier than the result it replaces, and which one counts follows the link, never the times."""
    return lot.pooled_at, f"lot {lot.lot_number} was pooled"


def tested_at_check(tested_at: datetime | None, *, reason: str, previous: datetime | None,
                    previous_name: str) -> tuple[dict[str, list[str]], bool]:
    """({field: [problem]}, late): ``tested_at`` through ``cmlims.timing`` (zone, not in the future, not
    before ``previous``; more than CMLIMS_LATE_ENTRY_HOURS ago needs a reason and is a late entry)."""
    problem = tested_at_problem(tested_at)
    if problem:
        return {"tested_at": [problem]}, False
    try:
        _, late = occurred_at_check(tested_at, field="tested_at", reason=reason, previous=previous,
                                    previous_name=previous_name)
    except InvalidInput as exc:
        return dict(exc.extra.get("fields") or {"tested_at": [exc.message]}), False
    return {}, late


def analyst_problem(analyst) -> str | None:
    if analyst is None:
        return "required"
    if not analyst.is_active:
        return f"{analyst.get_username()} is not an active user"
    if not roles.has_role(analyst, *ANALYST_ROLES):
        return f"{analyst.get_username()} is not lab staff or a QC officer"
    return None


def spec_item_for(lot: CMLot, *, spec_item: SpecItem | None = None, test: str = "") -> SpecItem:
    """The item of the lot's specification (in force when pooled), by instance or by test name."""
    specification = lot_specification(lot)
    if specification is None:
        raise field_error("lot", f"no specification of {lot.product} was in force when {lot.lot_number} was pooled")
    items = {i.test.casefold(): i for i in specification.items.all()}
    if spec_item is not None:
        if spec_item.specification_id != specification.pk:
            raise field_error("spec_item", f"not an item of {specification}, the specification of {lot.lot_number}")
        return spec_item
    found = items.get((test or "").strip().casefold())
    if found is None:
        raise field_error("test", f"'{test}' is not a test of {specification}")
    return found


def _attachment_digest(attachment: UploadedFile | None) -> str:
    if not attachment:
        return ""
    digest = hashlib.sha256()
    for chunk in attachment.chunks():
        digest.update(chunk)
    attachment.seek(0)
    return digest.hexdigest()


def build_result(*, lot: CMLot, item: SpecItem, value: str, unit: str, analyst, instrument: str,
                 tested_at: datetime, actor, source: str = ResultSource.ENTRY) -> QCResult:
    """An unsaved, fully evaluated result. Raises ValueProblem naming the bad field."""
    evaluated = evaluate(item, value, unit)
    return QCResult(
        lot=lot, spec_item=item, value_entered=str(value).strip(), unit_entered=(unit or "").strip(),
        value=evaluated.value, qualitative_value=evaluated.qualitative_value, passed=evaluated.passed,
        analyst=analyst, instrument=(instrument or "").strip(), tested_at=tested_at, source=source,
        entered_by=actor, entered_at=timezone.now(), status=ResultStatus.VALID,
    )


def oos_title(result: QCResult) -> str:
    unit = f" {result.unit_entered}" if result.unit_entered else ""
    return (f"OOS: {result.spec_item.test} = {result.value_entered}{unit} on lot {result.lot.lot_number} "
            f"(limit {result.spec_item.criterion})")


def oos_details(lot: CMLot) -> str:
    return oos_details_text(related_lot_numbers(lot))


def oos_details_text(related: list[str]) -> str:
    """An OOS investigation's details, naming the related lots (same donors) to check."""
    return ("opened automatically: the result fails its specification. Related lots (same donors) to check: "
            + (", ".join(related) if related else "none"))


def _locked_open_lot(lot: CMLot) -> CMLot:
    lot = lot_lock(lot)
    problem = lot_open_problem(lot)
    if problem:
        raise Conflict(problem, code="lot_closed", conditions=[{"code": "lot_closed", "detail": problem}])
    return lot


@transaction.atomic
def result_enter(
    *, lot: CMLot, actor, value: str, unit: str = "", analyst=None, tested_at: datetime | None = None,
    instrument: str = "", spec_item: SpecItem | None = None, test: str = "",
    attachment: UploadedFile | None = None, retest_of: QCResult | None = None,
    supersedes: QCResult | None = None, correction_reason: str = "", reason: str = "",
) -> QCResult:
    """Record one result. ``retest_of`` links a retest; ``supersedes`` (with a reason) makes it a correction.
    ``tested_at`` is checked like every step time (``tested_at_check``): a result entered more than
    CMLIMS_LATE_ENTRY_HOURS after its test needs ``reason`` (or the correction's) and is marked late."""
    roles.require_role(actor, ENTRY_ROLES, "Entering a QC result")
    lot = _locked_open_lot(lot)
    item = spec_item_for(lot, spec_item=spec_item, test=test)
    reason = (correction_reason or reason or "").strip()
    errors: dict[str, list[str]] = {}
    problem = analyst_problem(analyst)
    if problem:
        errors["analyst"] = [problem]
    previous, previous_name = tested_at_previous(lot)
    time_errors, late = tested_at_check(tested_at, reason=reason, previous=previous, previous_name=previous_name)
    errors.update(time_errors)
    for name, linked in (("retest_of", retest_of), ("supersedes", supersedes)):
        if linked is not None and (linked.lot_id != lot.pk or linked.spec_item_id != item.pk):
            errors[name] = ["must be a result of the same lot and test"]
        elif linked is not None and linked.status != ResultStatus.VALID:
            errors[name] = [f"result {linked.pk} is already superseded"]
    if supersedes is not None and not correction_reason.strip():
        errors["reason"] = ["a correction needs a reason"]
    try:
        result = build_result(lot=lot, item=item, value=value, unit=unit, analyst=analyst, instrument=instrument,
                              tested_at=tested_at, actor=actor) if tested_at_problem(tested_at) is None else None
    except ValueProblem as exc:
        errors.setdefault(exc.field, []).append(exc.problem)
        result = None
    if errors or result is None:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()), fields=errors)
    result.retest_of = retest_of
    result.attachment_sha256 = _attachment_digest(attachment)
    if attachment:
        result.attachment = attachment
    if supersedes is not None:
        original = result_lock(supersedes)
        if original.status != ResultStatus.VALID:
            raise Conflict(f"result {original.pk} is already superseded", code="result_superseded")
        audited_update(original, actor=actor, reason=correction_reason, status=ResultStatus.SUPERSEDED)
        result.supersedes = original
        result.correction_reason = correction_reason
    with late_entry(tested_at) if late else nullcontext():
        audited_save(result, actor=actor, reason=reason)
    if not result.passed:
        investigation_open(subject=result, kind=Kind.OOS, title=oos_title(result), actor=actor,
                           details=oos_details(lot))
    return result


def result_correct(*, result: QCResult, actor, value: str, unit: str = "", reason: str, analyst=None,
                   tested_at: datetime | None = None, instrument: str | None = None) -> QCResult:
    """A correction of a wrongly recorded result: a new result supersedes it; the original stays visible."""
    return result_enter(
        lot=result.lot, actor=actor, value=value, unit=unit, spec_item=result.spec_item,
        analyst=analyst or result.analyst, tested_at=tested_at or result.tested_at,
        instrument=result.instrument if instrument is None else instrument,
        supersedes=result, correction_reason=reason,
    )


def result_retest(*, result: QCResult, actor, value: str, unit: str = "", analyst, tested_at: datetime,
                  instrument: str = "", reason: str = "") -> QCResult:
    """A retest: a new measurement linked to the original, which stays valid and visible."""
    return result_enter(lot=result.lot, actor=actor, value=value, unit=unit, spec_item=result.spec_item,
                        analyst=analyst, tested_at=tested_at, instrument=instrument, retest_of=result,
                        reason=reason)


def result_get(result_id: int) -> QCResult:
    try:
        return QCResult.objects.select_related("lot", "spec_item", "analyst", "entered_by").get(pk=result_id)
    except (QCResult.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(f"result {result_id} does not exist") from exc


def result_approve(
    *, result: QCResult, actor, username: str, password: str, reason: str = "", meaning: str | None = None,
) -> QCResult:
    """A QC officer approves a result with a signature ("result approved"); never one they entered (rule 2).
    ``meaning``, if sent, must be "result approved"."""
    roles.require_role(actor, roles.QC_OFFICER, "Approving a QC result")
    grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                       meaning=Meaning.RESULT_APPROVED, meaning_sent=meaning or None, reason=reason,
                                       subject=result)
    return _result_approval_record(grant=grant, result=result, actor=actor, reason=reason)


@transaction.atomic
def _result_approval_record(*, grant: SigningGrant, result: QCResult, actor, reason: str = "") -> QCResult:
    """The approval after the signer's components were verified (``result_approve``, the only caller)."""
    roles.require_role(actor, roles.QC_OFFICER, "Approving a QC result")
    locked = result_lock(result)
    conditions = []
    if locked.status != ResultStatus.VALID:
        conditions.append({"code": "result_superseded", "detail": f"result {locked.pk} has been superseded"})
    if locked.approved_at is not None:
        conditions.append({"code": "already_approved", "detail": f"result {locked.pk} is already approved"})
    if actor.pk in (locked.entered_by_id, locked.analyst_id):
        conditions.append({"code": "own_result", "detail": "nobody approves a result they entered or performed"})
    problem = lot_open_problem(locked.lot)
    if problem:
        conditions.append({"code": "lot_closed", "detail": problem})
    if conditions:
        raise Conflict(f"result {locked.pk} cannot be approved: " + "; ".join(c["detail"] for c in conditions),
                       code="approval_refused", conditions=conditions)
    signature = signature_record(grant=grant, subject=locked, signer=actor, meaning=Meaning.RESULT_APPROVED,
                                 reason=reason,
                                 content=result_content(locked), field_list_version=RESULT_APPROVAL_V1)
    return audited_update(locked, actor=actor, reason=reason, approved_by=actor,
                          approved_at=signature.signed_at, approval=signature)


def result_invalidate(
    *, result: QCResult, actor, username: str, password: str, reason: str, meaning: str | None = None,
) -> QCResult:
    """A QC officer sets a result aside, signed "result invalidated" with a reason (an assignable cause found,
    say): it no longer counts for release and nothing replaces it unless a retest or correction is entered.
    Never a result the officer entered or performed (rule 2). ``meaning``, if sent, must be "result
    invalidated"."""
    roles.require_role(actor, roles.QC_OFFICER, "Invalidating a QC result")
    if not (reason or "").strip():
        raise field_error("reason", "invalidating a result needs a reason (why it does not stand)")
    grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                       meaning=Meaning.RESULT_INVALIDATED, meaning_sent=meaning or None,
                                       reason=reason, subject=result)
    return _result_invalidation_record(grant=grant, result=result, actor=actor, reason=reason)


def invalidation_conditions(result: QCResult, actor) -> list[dict]:
    """Every reason ``actor`` may not invalidate ``result`` now (an empty list: they may)."""
    conditions = []
    if result.status == ResultStatus.INVALIDATED:
        conditions.append({"code": "already_invalidated", "detail": f"result {result.pk} is already invalidated"})
    elif result.status != ResultStatus.VALID:
        conditions.append({"code": "result_superseded",
                           "detail": f"result {result.pk} has been superseded by a correction"})
    if actor.pk in (result.entered_by_id, result.analyst_id):
        conditions.append({"code": "own_result", "detail": "nobody invalidates a result they entered or performed"})
    problem = lot_open_problem(result.lot)
    if problem:
        conditions.append({"code": "lot_closed", "detail": problem})
    return conditions


@transaction.atomic
def _result_invalidation_record(*, grant: SigningGrant, result: QCResult, actor, reason: str) -> QCResult:
    """The invalidation after the signer's components were verified (``result_invalidate``, the only caller)."""
    roles.require_role(actor, roles.QC_OFFICER, "Invalidating a QC result")
    lot_lock(result.lot)  # lot first (the documented order): no sign-off slips in between check and write
    locked = result_lock(result)
    conditions = invalidation_conditions(locked, actor)
    if conditions:
        raise Conflict(f"result {locked.pk} cannot be invalidated: " + "; ".join(c["detail"] for c in conditions),
                       code="invalidation_refused", conditions=conditions)
    # What is signed is the result as it stands after the signature: invalidated.
    content = result_content(locked)
    content["result"]["status"] = ResultStatus.INVALIDATED.value
    signature = signature_record(grant=grant, subject=locked, signer=actor, meaning=Meaning.RESULT_INVALIDATED,
                                 reason=reason, content=content, field_list_version=RESULT_APPROVAL_V1)
    return audited_update(locked, actor=actor, reason=reason, status=ResultStatus.INVALIDATED,
                          invalidated_by=actor, invalidated_at=signature.signed_at, invalidation_reason=reason,
                          invalidation=signature)
