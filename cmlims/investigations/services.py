"""Opening, progressing and closing investigations. Any app opens one with ``investigation_open``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from cmlims import roles
from cmlims.audit import audited_bulk_create, audited_save, audited_update
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, InvalidInput
from cmlims.investigations.models import Disposition, Investigation, Kind, Phase, Status
from cmlims.locks import investigation_lock


def _new(*, subject: models.Model, kind: str, title: str, actor, details: str) -> Investigation:
    if kind not in Kind.values:
        raise InvalidInput(f"kind: must be one of {', '.join(Kind.values)}", fields={"kind": ["unknown kind"]})
    return Investigation(
        kind=kind, title=title[:300], details=details,
        content_type=ContentType.objects.get_for_model(type(subject)), object_id=str(subject.pk),
        subject_repr=str(subject)[:200], opened_by=actor if getattr(actor, "pk", None) else None,
        opened_at=timezone.now(),
    )


@transaction.atomic
def investigation_open(*, subject: models.Model, kind: str, title: str, actor, details: str = "") -> Investigation:
    """Open an investigation on ``subject``. No role check: it is opened by the rule that found the problem
    (a failing result, a temperature excursion), acting for ``actor``; callers check their own roles."""
    return audited_save(_new(subject=subject, kind=kind, title=title, actor=actor, details=details), actor=actor)


@transaction.atomic
def investigations_open_bulk(*, items: Sequence[tuple[models.Model, str, str, str]], actor) -> list[Investigation]:
    """Open many at once (bulk import): items are (subject, kind, title, details); one audit entry per row."""
    objs = [_new(subject=s, kind=k, title=t, actor=actor, details=d) for s, k, t, d in items]
    return audited_bulk_create(Investigation, objs, actor=actor) if objs else []


def _lock(investigation: Investigation) -> Investigation:
    return investigation_lock(investigation)


@transaction.atomic
def investigation_update(
    *, investigation: Investigation, actor, phase: str | None = None, root_cause: str | None = None,
    related_lots_checked: str | None = None, details: str | None = None, reason: str = "",
    product_disposition: str | None = None,
) -> Investigation:
    """Record progress (phase, root cause, related lots checked) on an open investigation."""
    roles.require_role(actor, roles.QC_OFFICER, "Updating an investigation")
    inv = _lock(investigation)
    if inv.status != Status.OPEN:
        raise Conflict(f"{inv.number} is closed.", conditions=[{"code": "investigation_closed",
                                                                "detail": f"{inv.number} is closed"}])
    if phase is not None and phase not in Phase.values:
        raise InvalidInput(f"phase: must be one of {', '.join(Phase.values)}", fields={"phase": ["unknown phase"]})
    if product_disposition and product_disposition not in Disposition.values:
        raise InvalidInput(f"product_disposition: must be one of {', '.join(Disposition.values)}",
                           fields={"product_disposition": ["unknown disposition"]})
    values = {k: v for k, v in (("phase", phase), ("root_cause", root_cause),
                                ("related_lots_checked", related_lots_checked), ("details", details),
                                ("product_disposition", product_disposition)) if v is not None}
    return audited_update(inv, actor=actor, reason=reason, **values)


INVESTIGATION_CLOSE_V1 = "investigation-close/1"

# Who took part in an investigation's subject, per subject model: fn(subject) -> {user id: what they did}.
# Registered by the app that owns the subject (qc: who entered, approved or retested the results).
_PARTICIPANTS: dict[type[models.Model], Callable[[models.Model], dict[int, str]]] = {}


def register_investigation_participants(model: type[models.Model],
                                        fn: Callable[[models.Model], dict[int, str]]) -> None:
    """Let the app owning ``model`` say who took part in an investigation's subject (rule 2: they do not close
    the investigation): ``fn(subject) -> {user id: "entered result ..."}``."""
    _PARTICIPANTS[model] = fn


def investigation_participants(inv: Investigation) -> dict[int, str]:
    """{user id: what they did} for everyone who entered, approved or retested what ``inv`` concerns."""
    model = inv.content_type.model_class() if inv.content_type_id else None
    fn = _PARTICIPANTS.get(model)
    if fn is None:
        return {}
    subject = model._default_manager.filter(pk=inv.object_id).first()
    return fn(subject) if subject is not None else {}


def investigation_close_content(inv: Investigation) -> dict:
    """What the closing signature of an OOS investigation covers (field list ``investigation-close/1``)."""
    return {"number": inv.number, "kind": inv.kind,
            "subject": f"{inv.content_type.app_label}.{inv.content_type.model}:{inv.object_id}",
            "title": inv.title, "details": inv.details, "phase": inv.phase, "root_cause": inv.root_cause,
            "related_lots_checked": inv.related_lots_checked, "conclusion": inv.conclusion,
            "product_disposition": inv.product_disposition}


def _close_errors(inv: Investigation, *, conclusion: str, root_cause: str | None, related_lots_checked: str | None,
                  product_disposition: str) -> tuple[dict[str, list[str]], dict]:
    errors: dict[str, list[str]] = {}
    if not (conclusion or "").strip():
        errors["conclusion"] = ["a written conclusion is required to close an investigation"]
    root = root_cause if root_cause is not None else inv.root_cause
    related = related_lots_checked if related_lots_checked is not None else inv.related_lots_checked
    if inv.kind == Kind.OOS and not (related or "").strip():
        errors["related_lots_checked"] = ["an OOS investigation records which related lots were checked"]
    product_disposition = product_disposition or inv.product_disposition
    if product_disposition and product_disposition not in Disposition.values:
        errors["product_disposition"] = [f"must be one of {', '.join(Disposition.values)}"]
    elif inv.kind == Kind.TEMPERATURE_EXCURSION and not product_disposition:
        # Receipt of the shipment follows this decision: the conclusion must say whether the product is usable.
        errors["product_disposition"] = ["an excursion is closed with the product's disposition "
                                         "(usable or not_usable)"]
    return errors, {"root_cause": root, "related_lots_checked": related, "product_disposition": product_disposition}


def _refuse_own_results(inv: Investigation, actor) -> None:
    """Rule 2: nobody closes an OOS investigation into results they entered, approved or retested."""
    did = investigation_participants(inv).get(actor.pk)
    if did:
        detail = f"{actor.get_username()} {did}: another QC officer closes {inv.number}"
        raise Conflict(detail, code="own_results", conditions=[{"code": "own_results", "detail": detail}])


def investigation_close(
    *, investigation: Investigation, actor, conclusion: str, root_cause: str | None = None,
    related_lots_checked: str | None = None, product_disposition: str = "", username: str = "",
    password: str = "", meaning: str | None = None,
) -> Investigation:
    """A QC officer closes an investigation with a written conclusion (211.192: concluded in writing; an OOS
    is extended to related lots, so what was checked there must be written too).

    Closing an OOS investigation is a Part 11 signature ("investigation closed", both components) by a QC
    officer who entered, approved and retested none of the results it concerns (409 ``own_results``)."""
    roles.require_role(actor, roles.QC_OFFICER, "Closing an investigation")
    if investigation.kind == Kind.DEVIATION:  # root cause, impact assessment and a signature: deviation_close
        raise Conflict(f"{investigation.number} is a deviation: close it with a root cause, an impact assessment "
                       "and a QC officer's signature", code="deviation_close_signed",
                       conditions=[{"code": "deviation_close_signed", "detail": "use the deviation close"}])
    if investigation.status != Status.OPEN:
        raise Conflict(f"{investigation.number} is already closed.", conditions=[
            {"code": "investigation_closed", "detail": f"{investigation.number} is already closed"}])
    errors, values = _close_errors(investigation, conclusion=conclusion, root_cause=root_cause,
                                   related_lots_checked=related_lots_checked, product_disposition=product_disposition)
    if errors:
        raise InvalidInput("; ".join(f"{k}: {v[0]}" for k, v in errors.items()), fields=errors)
    signed = investigation.kind == Kind.OOS
    grant = None
    if signed:
        _refuse_own_results(investigation, actor)  # before the credential check: no failure counted for it
        grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                           meaning=Meaning.INVESTIGATION_CLOSED, meaning_sent=meaning or None,
                                           reason=conclusion)
    with transaction.atomic():
        inv = _lock(investigation)
        if inv.status != Status.OPEN:
            raise Conflict(f"{inv.number} is already closed.",
                           conditions=[{"code": "investigation_closed", "detail": f"{inv.number} is already closed"}])
        errors, values = _close_errors(inv, conclusion=conclusion, root_cause=root_cause,  # the row as locked
                                       related_lots_checked=related_lots_checked,
                                       product_disposition=product_disposition)
        if errors:
            raise InvalidInput("; ".join(f"{k}: {v[0]}" for k, v in errors.items()), fields=errors)
        if not signed:
            return audited_update(inv, actor=actor, reason=conclusion, status=Status.CLOSED, conclusion=conclusion,
                                  closed_by=actor, closed_at=timezone.now(), **values)
        _refuse_own_results(inv, actor)  # again under the lock: a retest entered meanwhile counts
        inv = audited_update(inv, actor=actor, reason=conclusion, conclusion=conclusion, **values)
        signature = signature_record(grant=grant, subject=inv, signer=actor, meaning=Meaning.INVESTIGATION_CLOSED,
                                     reason=conclusion, content=investigation_close_content(inv),
                                     field_list_version=INVESTIGATION_CLOSE_V1)
        return audited_update(inv, actor=actor, reason=conclusion, status=Status.CLOSED, closed_by=actor,
                              closed_at=signature.signed_at, closing_signature=signature)
