"""Signing: both components every time (11.200(a)), a lockout after repeated failures (11.300), every
failure audited, and a content hash anchored to the audit chain (11.70).

Signing is two steps because a failure must be recorded even though the caller's change is refused:
``signing_credentials_verify`` runs in its own committed transaction (so the failure count and its audit
entry survive the refusal), then the caller opens its transaction, locks its record, checks its rules and
calls ``signature_record``. ``signature_sign`` does both for callers with nothing to lock in between.

No signature without re-authentication (11.200(a)): ``signing_credentials_verify`` returns a
``SigningGrant`` and ``signature_record`` writes only against an unused grant for the same signer and
meaning, so a signature cannot be written by a path that skipped the credential check. Services that
sign keep their "record" half private (``_result_approval_record``); ``tests/cmlims/esign/
test_signature_writers.py`` walks every caller to keep it so.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from cmlims.audit import Action, audit_record, audited_save, canonical_json, chain_head, to_jsonable
from cmlims.esign.models import Meaning, Signature, SignatureCheck
from cmlims.exceptions import InvalidInput, SigningLocked, field_error
from cmlims.locks import signing_failure_lock

log = logging.getLogger(__name__)

# Meanings that need a reason (a refusal or a withdrawal must say why).
REASON_REQUIRED = {Meaning.REJECTED, Meaning.RECALLED}


def _printed_name(user) -> str:
    return user.get_full_name().strip() or user.get_username()


def _seconds_left(until) -> int:
    return max(1, math.ceil((until - timezone.now()).total_seconds()))


def _locked(user, until) -> SigningLocked:
    retry = _seconds_left(until)
    return SigningLocked(
        f"Signing is locked for {user.get_username()} after repeated wrong passwords; try again in {retry} s.",
        retry_after=retry,
    )


class SigningGrantInvalid(RuntimeError):
    """A programming error: a signature written without a fresh credential check for its signer and meaning."""


_GRANT_SEAL = object()  # only this module makes grants


@dataclass(eq=False)
class SigningGrant:
    """Proof that ``signer_id`` gave both components just now for ``meaning``; good for one signature."""

    signer_id: int
    meaning: str
    seal: object = field(repr=False)
    used: bool = False


def _grant_use(grant: SigningGrant, *, signer, meaning: str) -> None:
    if not isinstance(grant, SigningGrant) or grant.seal is not _GRANT_SEAL:
        raise SigningGrantInvalid("a signature needs the grant returned by signing_credentials_verify")
    if grant.used:
        raise SigningGrantInvalid("this signing grant was already used: every signature re-authenticates")
    if grant.signer_id != signer.pk or grant.meaning != meaning:
        raise SigningGrantInvalid(f"the grant is for user {grant.signer_id} signing '{grant.meaning}', "
                                  f"not user {signer.pk} signing '{meaning}'")
    grant.used = True


def signature_failure_record(*, signer, meaning: str, failure: str, subject: models.Model | None = None,
                             **details: Any) -> None:
    """The audit entry of a refused signature attempt, against the record being signed (the lot of a lot
    sign-off) so its review shows it, or against the signer when the caller names no record. A wrong
    password or user name also counts towards the signing lock (``signing_credentials_verify``); a meaning
    not confirmed does not (no credential was tried)."""
    changes: dict[str, Any] = {"meaning": meaning, "failure": failure, **details}
    if subject is not None:
        changes["signer_id"] = signer.pk
    audit_record(actor=signer, action=Action.SIGNATURE_FAILED, obj=subject if subject is not None else signer,
                 changes=changes)


def signing_credentials_verify(
    *, signer, username: str, password: str, meaning: str, reason: str = "", meaning_sent: str | None = None,
    subject: models.Model | None = None,
) -> SigningGrant:
    """Check both signature components for ``signer`` (the caller) signing with ``meaning`` (the one the step
    signs with), and that ``meaning_sent`` (what the signer sent, None if nothing) is that meaning. Raises
    InvalidInput (400) or SigningLocked (423). Call it BEFORE opening the transaction of the signed change:
    the failure count and its audit entry are written in their own transaction, which the refusal does not
    roll back. (Inside an outer transaction — the demo seeder — they share that transaction's fate.)
    Returns the grant ``signature_record`` needs (one signature per check). ``subject``, the record being
    signed, is where every failed attempt is recorded (``signature_failure_record``)."""
    if meaning not in Meaning.values:
        raise field_error("meaning", f"must be one of: {', '.join(Meaning.values)}")
    if meaning_sent is not None and meaning_sent != meaning:
        with transaction.atomic():
            signature_failure_record(signer=signer, meaning=meaning, failure="meaning not confirmed",
                                     subject=subject, given=meaning_sent)
        raise field_error("meaning", f"must be '{meaning}' for this signature")
    if meaning in REASON_REQUIRED and not (reason or "").strip():
        raise field_error("reason", f"a reason is required to sign '{meaning}'")
    missing = {name: ["This field is required."] for name, value in (("username", username), ("password", password))
               if not value}
    if missing:
        raise InvalidInput("; ".join(f"{k}: required" for k in missing), fields=missing)

    error: Exception | None = None
    with transaction.atomic():
        state = signing_failure_lock(signer)
        now = timezone.now()
        if state.locked_until and state.locked_until > now:
            signature_failure_record(signer=signer, meaning=meaning, failure="signing locked", subject=subject)
            error = _locked(signer, state.locked_until)
        elif username != signer.get_username() or not signer.check_password(password):
            # The user name must be the caller's own (nobody signs for someone else); a wrong one counts
            # towards the lock like a wrong password, or a caller could probe names without limit.
            wrong_name = username != signer.get_username()
            state.consecutive += 1
            limit = settings.CMLIMS_SIGNING_MAX_FAILURES
            changes: dict[str, Any] = {"consecutive": state.consecutive}
            if wrong_name:
                changes["given"] = username
            if state.consecutive >= limit:
                state.locked_until = now + settings.CMLIMS_SIGNING_LOCK
                state.consecutive = 0
                changes["locked_until"] = state.locked_until
            state.save()
            signature_failure_record(signer=signer, meaning=meaning, subject=subject,
                                     failure="user name is not the caller's" if wrong_name else "wrong password",
                                     **changes)
            field, problem = (("username", "must be your own user name") if wrong_name
                              else ("password", "wrong password"))
            if "locked_until" in changes:
                error = _locked(signer, state.locked_until)
                error.extra["fields"] = {field: [problem]}
            else:
                error = field_error(field, f"{problem} ({limit - state.consecutive} attempt(s) left "
                                           "before signing is locked)")
        elif state.consecutive or state.locked_until:
            state.consecutive = 0
            state.locked_until = None
            state.save()
    if error is not None:
        raise error
    return SigningGrant(signer_id=signer.pk, meaning=meaning, seal=_GRANT_SEAL)


def signature_digest(*, content: dict, field_list_version: str, chain_sequence: int, chain_hash: str) -> str:
    """SHA-256 over the canonical JSON of the signed fields, their list version and the chain anchor."""
    payload = {
        "field_list_version": field_list_version,
        "fields": to_jsonable(content),
        "chain_head": {"sequence": chain_sequence, "hash": chain_hash},
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@transaction.atomic
def signature_record(
    *, grant: SigningGrant, subject: models.Model, signer, meaning: str, reason: str, content: dict,
    field_list_version: str,
) -> Signature:
    """Write the signature in the caller's transaction, with its audit entry, against the ``grant`` of the
    credential check (``signing_credentials_verify``) for this signer and meaning; SigningGrantInvalid otherwise."""
    _grant_use(grant, signer=signer, meaning=meaning)
    head = chain_head()
    content = to_jsonable(content)
    signature = Signature(
        content_type=ContentType.objects.get_for_model(type(subject)),
        object_id=str(subject.pk),
        signer=signer,
        printed_name=_printed_name(signer),
        meaning=meaning,
        reason=reason or "",
        signed_at=timezone.now(),
        field_list_version=field_list_version,
        signed_fields=sorted(content),
        content=content,
        content_sha256=signature_digest(content=content, field_list_version=field_list_version,
                                        chain_sequence=head.sequence, chain_hash=head.hash),
        chain_sequence=head.sequence,
        chain_hash=head.hash,
    )
    signature = audited_save(signature, actor=signer, action=Action.SIGNED, reason=reason or "")
    scope = _check_scope(signature)
    if scope is not None:
        # Stale, not "unchanged": the caller built the content before this row existed, and a write to a
        # covered record that committed in between (one that does not lock the subject: a harvest, a donor)
        # found no check to mark. The list checks it from the records until the refresh (within a minute).
        SignatureCheck.objects.create(signature=signature, subject_id=signature.object_id, scope=scope, stale=True)
    return signature


def signature_sign(
    *, subject: models.Model, signer, username: str, password: str, meaning: str, reason: str = "",
    content: dict, field_list_version: str,
) -> Signature:
    """Verify both components (failures committed and audited), then record the signature."""
    grant = signing_credentials_verify(signer=signer, username=username, password=password, meaning=meaning,
                                       reason=reason, subject=subject)
    return signature_record(grant=grant, subject=subject, signer=signer, meaning=meaning, reason=reason,
                            content=content,
                            field_list_version=field_list_version)


@dataclass(frozen=True)
class SignatureStatus:
    changed_after_signing: bool
    changed_fields: list[str]
    # When the answer was computed, if it was read from the signature's stored check (list pages); None when
    # it was computed for this answer from the records as they are now.
    checked_at: datetime | None = None


def signature_status(signature: Signature, current_content: dict) -> SignatureStatus:
    """Compare what was signed with the record now (built by the same field list version)."""
    digest = signature_digest(content=current_content, field_list_version=signature.field_list_version,
                              chain_sequence=signature.chain_sequence, chain_hash=signature.chain_hash)
    if digest == signature.content_sha256:
        return SignatureStatus(False, [])
    now = to_jsonable(current_content)
    signed = signature.content
    changed = sorted(k for k in set(now) | set(signed) if now.get(k) != signed.get(k))
    return SignatureStatus(True, changed or ["(content)"])


def signature_manifest(signature: Signature, status: SignatureStatus | None = None) -> dict:
    """How a signature shows in the API and on printouts (11.50): printed name, UTC time, meaning."""
    body = {
        "id": signature.pk,
        "printed_name": signature.printed_name,
        "username": signature.signer.get_username() if signature.signer_id else "",
        "meaning": signature.meaning,
        "reason": signature.reason,
        "signed_at": to_jsonable(signature.signed_at),
        "content_sha256": signature.content_sha256,
        "field_list_version": signature.field_list_version,
        "chain_head": {"sequence": signature.chain_sequence, "hash": signature.chain_hash},
    }
    if status is not None:
        body["changed_after_signing"] = status.changed_after_signing
        body["changed_fields"] = status.changed_fields
    return body


# --- "changed after signing" for any app: the app that signs registers how to rebuild its content ---------

_CONTENT_CHECKERS: dict[str, Any] = {}
_BULK_CHECKERS: dict[str, Any] = {}
_AFFECTED: dict[str, Any] = {}


def register_content_checker(field_list_prefix: str, fn, *, many=None, affected=None) -> None:
    """``fn(subject, signature) -> SignatureStatus`` for signatures whose field list version starts with
    ``field_list_prefix`` (e.g. "lot-signoff/"). Registered from the signing app's ready(), so other apps (the
    lot API in batches) can show "changed after signing" without importing the signing app. ``many``, if
    given, checks a page at once: ``many([(subject, signature), ...]) -> [SignatureStatus, ...]`` in a
    constant number of queries (list pages).

    ``affected``, if given, makes the answers stored (``SignatureCheck``): ``affected(entries_by_type)``
    gets the audit entries of a write grouped by object type and returns the subjects whose signed content
    they may have changed, as a list of iterables or subqueries of subject ids (text); an empty list when none.
    It must name every record the content is built from: a record it misses would leave a stored answer
    "unchanged" until the nightly sweep."""
    _CONTENT_CHECKERS[field_list_prefix] = fn
    if many is not None:
        _BULK_CHECKERS[field_list_prefix] = many
    if affected is not None:
        _AFFECTED[field_list_prefix] = affected


def signature_current_statuses(pairs: list[tuple[models.Model, Signature]]) -> dict[int, SignatureStatus | None]:
    """{signature pk: status} for many (subject, signature) pairs; a bulk checker where one is registered."""
    out: dict[int, SignatureStatus | None] = {}
    groups: dict[str, list[tuple[models.Model, Signature]]] = {}
    for subject, signature in pairs:
        prefix = next((p for p in _CONTENT_CHECKERS if signature.field_list_version.startswith(p)), None)
        if prefix is None:
            out[signature.pk] = None
        else:
            groups.setdefault(prefix, []).append((subject, signature))
    for prefix, group in groups.items():
        many = _BULK_CHECKERS.get(prefix)
        statuses = many(group) if many else [_CONTENT_CHECKERS[prefix](s, sig) for s, sig in group]
        out.update({sig.pk: status for (_, sig), status in zip(group, statuses, strict=True)})
    return out


def signed_content_note(status: SignatureStatus | None) -> str:
    """How a printout states a signature's status now: "unchanged" or the signed fields changed since."""
    if status is None or not status.changed_after_signing:
        return "unchanged"
    return "CHANGED AFTER SIGNING: " + ", ".join(status.changed_fields)


def signature_current_status(signature: Signature, subject: models.Model) -> SignatureStatus | None:
    """Whether ``subject`` changed since ``signature`` was made; None if no app registered a checker."""
    for prefix, fn in _CONTENT_CHECKERS.items():
        if signature.field_list_version.startswith(prefix):
            return fn(subject, signature)
    return None


# --- stored checks: list pages read the last answer; every write to a covered record marks it stale ------------


def _check_scope(signature: Signature) -> str | None:
    return next((p for p in _AFFECTED if signature.field_list_version.startswith(p)), None)


def signature_checks_mark_stale(entries: list) -> None:
    """Audit-chain listener (``cmlims.audit.register_append_listener``): in the transaction of a write, mark
    stale the stored checks of every signature whose subject the written records may belong to, and bump
    their generation so a refresh that read the records before this write cannot store its answer. One
    UPDATE per registered scope, none when no entry concerns a covered record."""
    if not _AFFECTED or not entries:
        return
    # Each entry's record id becomes a parameter of the UPDATE: a 50,000-row import in one statement would
    # pass SQLite's limit of 32,766 and roll the import back. The audit's own bulk writes chunk the same way.
    for start in range(0, len(entries), _MARK_CHUNK):
        by_type: dict[str, list] = defaultdict(list)
        for entry in entries[start:start + _MARK_CHUNK]:
            by_type[entry.object_type].append(entry)
        for scope, affected in _AFFECTED.items():
            subjects = affected(by_type)
            if not subjects:
                continue
            match = Q()
            for ids in subjects:
                match |= Q(subject_id__in=ids)
            SignatureCheck.objects.filter(match, scope=scope).update(stale=True, generation=F("generation") + 1)


_MARK_CHUNK = 5000


def signature_checks_recorded(signatures: list[Signature]) -> dict[int, SignatureStatus]:
    """{signature pk: status} from the stored checks that are fresh (one query; none if no signature has a
    stored scope). A signature missing here (stale, or never checked) is checked from its records."""
    ids = [s.pk for s in signatures if _check_scope(s) is not None]
    if not ids:
        return {}
    return {
        pk: SignatureStatus(changed, list(fields), checked_at=at)
        for pk, changed, fields, at in SignatureCheck.objects.filter(signature_id__in_ids=ids, stale=False)
        .values_list("signature_id", "changed_after_signing", "changed_fields", "checked_at")
    }


def signature_checks_refresh(*, everything: bool = False, batch: int = 200) -> dict[str, int]:
    """Recompute the stored checks that are stale (``everything``: every check, the nightly sweep, which also
    catches a change made outside the services), batch by batch in signature order, each answer stored only
    if no write marked the check again since its generation was read. Returns counts: checked, stored (the
    rest were marked again meanwhile and wait for the next run), changed (answers now "changed after
    signing" that were not before)."""
    counts = {"checked": 0, "stored": 0, "changed": 0}
    after = 0
    while True:
        rows = SignatureCheck.objects.filter(signature_id__gt=after).order_by("signature_id")
        if not everything:
            rows = rows.filter(stale=True)
        rows = list(rows.values_list("signature_id", "generation", "changed_after_signing")[:batch])
        if not rows:
            return counts
        after = rows[-1][0]
        # The generations are read before the records: a write committed after this read bumps them.
        head = chain_head().sequence
        signatures = Signature.objects.filter(pk__in=[r[0] for r in rows]).prefetch_related("subject")
        statuses = signature_current_statuses([(s.subject, s) for s in signatures if s.subject is not None])
        now = timezone.now()
        for pk, generation, was_changed in rows:
            status = statuses.get(pk)
            if status is None:
                continue
            counts["checked"] += 1
            stored = SignatureCheck.objects.filter(signature_id=pk, generation=generation).update(
                stale=False, changed_after_signing=status.changed_after_signing,
                changed_fields=status.changed_fields, checked_at=now, checked_through=head)
            counts["stored"] += stored
            if stored and status.changed_after_signing and not was_changed:
                counts["changed"] += 1
                log.warning("signature %s: changed after signing (%s)", pk, ", ".join(status.changed_fields))
