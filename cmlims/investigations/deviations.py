"""Deviations (21 CFR 211.192, 211.100(b)): raised by lab staff or QC against a lot, a run, a harvest or a
shipment; closed by a QC officer with a root cause, an impact assessment and an electronic signature
("deviation closed"). An open deviation on a lot blocks its release (``deviation_open``, in qc's release
conditions).

The core knows no product: the apps register which of their records a deviation may be raised against
(``register_deviation_subject``, from their ``ready()``), under a short key the API and the admin use.
"""

from __future__ import annotations

from django.db import models, transaction
from django.utils import timezone

from cmlims import roles
from cmlims.audit import audited_update
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_record, signing_credentials_verify
from cmlims.exceptions import Conflict, InvalidInput, NotFound, field_error
from cmlims.investigations.models import Investigation, Kind, Status
from cmlims.investigations.services import investigation_open
from cmlims.locks import investigation_lock

DEVIATION_CLOSE_V1 = "deviation-close/1"
RAISE_ROLES = (roles.LAB_STAFF, roles.QC_OFFICER)

_SUBJECTS: dict[str, type[models.Model]] = {}


def register_deviation_subject(key: str, model: type[models.Model]) -> None:
    """Let deviations be raised against ``model`` records, named ``key`` ("lot", "harvest", ...)."""
    _SUBJECTS[key] = model


def deviation_subject_types() -> dict[str, type[models.Model]]:
    return dict(_SUBJECTS)


def deviation_subject_get(subject_type: str, subject_id) -> models.Model:
    """The record a deviation is raised against; 400 naming the field for an unknown type, 404 for no row."""
    model = _SUBJECTS.get(subject_type)
    if model is None:
        raise field_error("subject_type", f"must be one of: {', '.join(sorted(_SUBJECTS))}")
    try:
        return model._default_manager.get(pk=subject_id)
    except (model.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(f"{subject_type} {subject_id} does not exist") from exc


def deviation_raise(*, subject: models.Model, actor, title: str, details: str = "") -> Investigation:
    """Lab staff or a QC officer opens a deviation against ``subject`` (a registered type)."""
    roles.require_role(actor, RAISE_ROLES, "Raising a deviation")
    if type(subject) not in _SUBJECTS.values():
        raise field_error("subject_type", f"a deviation is raised against one of: {', '.join(sorted(_SUBJECTS))}")
    errors = {name: ["required to raise a deviation"] for name, value in (("title", title), ("details", details))
              if not (value or "").strip()}
    if errors:
        raise InvalidInput("; ".join(f"{k}: required" for k in errors), fields=errors)
    return investigation_open(subject=subject, kind=Kind.DEVIATION, title=title.strip(), details=details.strip(),
                              actor=actor)


def deviation_content(inv: Investigation) -> dict:
    """What the closing signature covers (field list ``deviation-close/1``)."""
    return {"number": inv.number, "subject": f"{inv.content_type.app_label}.{inv.content_type.model}:{inv.object_id}",
            "title": inv.title, "details": inv.details, "root_cause": inv.root_cause,
            "impact_assessment": inv.impact_assessment, "conclusion": inv.conclusion}


def deviation_close(
    *, investigation: Investigation, actor, username: str, password: str, root_cause: str,
    impact_assessment: str, conclusion: str = "", meaning: str | None = None,
) -> Investigation:
    """A QC officer closes a deviation: root cause and impact assessment written, signed "deviation closed"
    with both components (11.200(a)). ``meaning``, if sent, must be "deviation closed"."""
    roles.require_role(actor, roles.QC_OFFICER, "Closing a deviation")
    errors = {name: ["required to close a deviation"] for name, value in
              (("root_cause", root_cause), ("impact_assessment", impact_assessment)) if not (value or "").strip()}
    if errors:
        raise InvalidInput("; ".join(f"{k}: required" for k in errors), fields=errors)
    grant = signing_credentials_verify(signer=actor, username=username, password=password,
                                       meaning=Meaning.DEVIATION_CLOSED, meaning_sent=meaning or None,
                                       reason=conclusion, subject=investigation)
    with transaction.atomic():
        inv = investigation_lock(investigation)
        if inv.kind != Kind.DEVIATION:
            raise Conflict(f"{inv.number} is not a deviation", code="not_a_deviation",
                           conditions=[{"code": "not_a_deviation", "detail": f"{inv.number} is a {inv.kind}"}])
        if inv.status != Status.OPEN:
            raise Conflict(f"{inv.number} is already closed.",
                           conditions=[{"code": "investigation_closed", "detail": f"{inv.number} is already closed"}])
        conclusion = (conclusion or "").strip() or impact_assessment.strip()
        inv = audited_update(inv, actor=actor, reason=conclusion, root_cause=root_cause.strip(),
                             impact_assessment=impact_assessment.strip(), conclusion=conclusion)
        signature = signature_record(grant=grant, subject=inv, signer=actor, meaning=Meaning.DEVIATION_CLOSED,
                                     reason=conclusion, content=deviation_content(inv),
                                     field_list_version=DEVIATION_CLOSE_V1)
        return audited_update(inv, actor=actor, reason=conclusion, status=Status.CLOSED, closed_by=actor,
                              closed_at=signature.signed_at or timezone.now(), closing_signature=signature)
