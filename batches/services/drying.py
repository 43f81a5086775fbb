"""Freeze-drying: load the dryer (lot → freeze_drying), record phases in order, complete the run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from cmlims.audit import audited_create, audited_update
from cmlims.exceptions import Conflict, InvalidInput, field_error
from cmlims.timing import occurred_at_check, step_entry

from ..locks import lot_lock, row_lock
from ..models import CMLot, LotStatus, LyophilisationPhase, LyophilisationRun
from .common import change_begin, refuse_if_voided, refuse_unknown, require_lab_staff, update_fields
from .lots import lot_transition

RUN_FIELDS = {"run_number", "dryer", "recipe", "recipe_version", "vials_loaded", "fill_volume_ml", "started_at",
              "performed_at"}
PHASE_FIELDS = {"shelf_temperature_setpoint_c", "shelf_temperature_actual_c", "chamber_pressure_setpoint_mbar",
                "chamber_pressure_actual_mbar", "started_at", "ended_at"}
PHASE_ORDER = [LyophilisationPhase.Phase.FREEZING, LyophilisationPhase.Phase.PRIMARY,
               LyophilisationPhase.Phase.SECONDARY]
COMPLETION_REQUIRED = ("ended_at", "end_of_primary_drying_method", "end_of_primary_drying_at",
                       "end_of_primary_drying_evidence", "stoppering_method", "stoppered_at")
COMPLETION_FIELDS = (*COMPLETION_REQUIRED, "stoppering_pressure_mbar", "alarms", "alarm_count")


@transaction.atomic
def lyophilisation_run_start(*, lot: CMLot, actor, reason: str = "", **values) -> LyophilisationRun:
    """Load the processed lot into the dryer and move the lot to ``freeze_drying`` (one transaction).

    The vials loaded × fill volume must fit in the lot's bulk volume.
    """
    require_lab_staff(actor, "Loading the freeze-dryer")
    refuse_unknown(values, RUN_FIELDS)
    lot = lot_lock(lot)
    vials, fill = values.get("vials_loaded"), values.get("fill_volume_ml")
    if vials is None or vials < 1:
        raise field_error("vials_loaded", "must be at least 1 vial")
    if fill is None or fill <= 0:
        raise field_error("fill_volume_ml", "must be greater than zero")
    if lot.volume_out_ml is not None and vials * fill > lot.volume_out_ml:
        raise field_error("vials_loaded", f"{vials} vials × {fill} mL = {vials * fill} mL, more than the lot's "
                                          f"{lot.volume_out_ml} mL bulk")
    if hasattr(lot, "lyophilisation_run"):
        raise Conflict(f"lot {lot} already has a freeze-drying run", code="wrong_status",
                       conditions=[{"code": "already_loaded", "detail": f"lot {lot} already has a run"}])
    with step_entry(values.get("performed_at"), field="performed_at", reason=reason, previous=lot.concentrated_at,
                    previous_name="concentration (the dryer is loaded after it)") as performed_at:
        values["performed_at"] = performed_at
        run = audited_create(LyophilisationRun, actor=actor, reason=reason, lot=lot, performed_by=actor, **values)
        lot_transition(lot=lot, to=LotStatus.FREEZE_DRYING, actor=actor, reason=reason)
    return run


def _open_run(run: LyophilisationRun) -> LyophilisationRun:
    run = row_lock(LyophilisationRun, run.pk)
    refuse_if_voided(run)
    if run.is_complete:
        raise Conflict(f"run {run} is completed", code="wrong_status",
                       conditions=[{"code": "run_completed", "detail": f"run {run} is completed"}])
    return run


@transaction.atomic
def lyophilisation_phase_record(*, run: LyophilisationRun, phase: str, actor, reason: str = "",
                                **values) -> LyophilisationPhase:
    """Record one phase; phases follow freezing → primary drying → secondary drying, without overlap."""
    require_lab_staff(actor, "Recording a freeze-drying phase")
    refuse_unknown(values, PHASE_FIELDS)
    run = _open_run(run)
    if phase not in PHASE_ORDER:
        raise field_error("phase", f"must be one of: {', '.join(PHASE_ORDER)}")
    recorded = {p.phase: p for p in run.phases.filter(voided_at__isnull=True)}
    label = LyophilisationPhase.Phase(phase).label
    if phase in recorded:
        raise field_error("phase", f"{label} is already recorded for run {run}")
    index = PHASE_ORDER.index(phase)
    previous, previous_name = run.started_at, "the run started"
    if index > 0:
        before = recorded.get(PHASE_ORDER[index - 1])
        previous_label = LyophilisationPhase.Phase(PHASE_ORDER[index - 1]).label
        if before is None:
            raise Conflict(f"record {previous_label} before {label}", code="wrong_order",
                           conditions=[{"code": "wrong_order", "detail": f"{previous_label} is not recorded"}])
        previous, previous_name = before.ended_at, f"{previous_label} ended"
    # Both times come from the dryer's record: not in the future, in order, a late entry with its reason.
    if values.get("started_at") is None:
        raise field_error("started_at", "required: when the phase started")
    started_at, _ = occurred_at_check(values["started_at"], field="started_at", reason=reason, previous=previous,
                                      previous_name=previous_name)
    if values.get("ended_at") is None:
        raise field_error("ended_at", "required: when the phase ended")
    with step_entry(values["ended_at"], field="ended_at", reason=reason, previous=started_at,
                    previous_name="the phase started") as ended_at:
        values.update(started_at=started_at, ended_at=ended_at)
        return audited_create(LyophilisationPhase, actor=actor, reason=reason, run=run, phase=phase, **values)


@transaction.atomic
def lyophilisation_run_complete(
    *, run: LyophilisationRun, actor, ended_at: datetime, end_of_primary_drying_method: str,
    end_of_primary_drying_at: datetime, end_of_primary_drying_evidence: str, stoppering_method: str,
    stoppered_at: datetime, stoppering_pressure_mbar: Decimal | None = None, alarms: str = "", alarm_count: int = 0,
    reason: str = "",
) -> LyophilisationRun:
    """Close the run: all three phases, end-of-primary-drying evidence, stoppering and alarms recorded."""
    require_lab_staff(actor, "Completing a freeze-drying run")
    run = _open_run(run)
    recorded = set(run.phases.filter(voided_at__isnull=True).values_list("phase", flat=True))
    missing = [p for p in PHASE_ORDER if p not in recorded]
    if missing:
        raise Conflict(f"phases not recorded: {', '.join(missing)}", code="wrong_order",
                       conditions=[{"code": "phase_missing", "detail": f"{p} is not recorded"} for p in missing])
    if not (end_of_primary_drying_evidence or "").strip():
        raise field_error("end_of_primary_drying_evidence", "describe the readings that show primary drying ended")
    if alarm_count and not (alarms or "").strip():
        raise field_error("alarms", "list the alarms counted, with their times and responses")
    if alarm_count is None or alarm_count < 0:
        raise field_error("alarm_count", "must not be negative")
    with step_entry(ended_at, field="ended_at", reason=reason, previous=run.started_at,
                    previous_name="the run started") as ended_at:
        return audited_update(
            run, actor=actor, reason=reason,
            ended_at=ended_at, end_of_primary_drying_method=end_of_primary_drying_method,
            end_of_primary_drying_at=end_of_primary_drying_at,
            end_of_primary_drying_evidence=end_of_primary_drying_evidence, stoppering_method=stoppering_method,
            stoppering_pressure_mbar=stoppering_pressure_mbar, stoppered_at=stoppered_at, alarms=alarms,
            alarm_count=alarm_count, completed_by=actor, completed_at=timezone.now(),
        )


@transaction.atomic
def lyophilisation_run_update(*, run: LyophilisationRun, actor, reason: str = "", **values) -> LyophilisationRun:
    """Correct descriptive fields of a run (the vial count is fixed once loaded: it feeds reconciliation)."""
    run = change_begin(run, actor=actor, action="Changing a freeze-drying run")
    allowed = {"dryer", "recipe", "recipe_version", "started_at", "alarms", "end_of_primary_drying_evidence"}
    if run.lot.status in (LotStatus.FREEZE_DRYING,) and not hasattr(run, "packaging_run"):
        allowed |= {"fill_volume_ml"}
    return update_fields(run, allowed=allowed, values=values, actor=actor, reason=reason)


@contextmanager
def _phase_fields(phase: str) -> Iterator[None]:
    """Name a refused phase field as ``<phase>.<field>`` (and the phase in the message): on one page with three
    phases, "started_at" alone does not say which row is wrong."""
    try:
        yield
    except InvalidInput as exc:
        label = LyophilisationPhase.Phase(phase).label
        fields = {f"{phase}.{name}": problems for name, problems in (exc.extra.get("fields") or {}).items()}
        raise InvalidInput(f"{label}: {exc.message}", fields=fields) from exc


@transaction.atomic
def lyophilisation_run_record(
    *, actor, run: LyophilisationRun | None = None, lot: CMLot | None = None, loading: dict | None = None,
    phases: dict[str, dict] | None = None, completion: dict | None = None, reason: str = "",
) -> LyophilisationRun:
    """A freeze-drying run recorded on one page, all or nothing: load the dryer (when no ``run`` is given),
    record each phase given in freezing → primary → secondary order, then complete the run when ``completion``
    is given. Each part goes through its own service (rules, audit, late entries); a refused phase field is
    named ``<phase>.<field>`` ("primary_drying.started_at")."""
    require_lab_staff(actor, "Recording a freeze-drying run")
    unknown_phases = set(phases or {}) - set(PHASE_ORDER)
    if unknown_phases:
        raise field_error("phase", f"unknown phase(s): {', '.join(sorted(unknown_phases))}")
    if run is None:
        if lot is None:
            raise field_error("lot", "choose the lot loaded into the dryer")
        run = lyophilisation_run_start(lot=lot, actor=actor, reason=reason, **(loading or {}))
    for phase in PHASE_ORDER:
        values = (phases or {}).get(phase)
        if values:
            with _phase_fields(phase):
                lyophilisation_phase_record(run=run, phase=phase, actor=actor, reason=reason, **values)
    if completion:
        refuse_unknown(completion, set(COMPLETION_FIELDS))
        for name in COMPLETION_REQUIRED:
            if completion.get(name) in (None, ""):
                raise field_error(name, "required to complete the run")
        run = lyophilisation_run_complete(run=run, actor=actor, reason=reason, **{
            **completion, "alarms": completion.get("alarms") or "", "alarm_count": completion.get("alarm_count") or 0})
    return LyophilisationRun.objects.get(pk=run.pk)
