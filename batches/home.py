"""Lab staff's start page (cmlims.home): lots in progress by stage with their next step and what blocks
each, and the steps waiting for a second person's verification (never the user's own).

Selectors only (reads); a fixed number of queries whatever the number of lots or steps."""

from __future__ import annotations

from django.db.models import Count, Q, Subquery, Value

from cmlims import roles
from cmlims.home import HomeRow, home_section_add

from .lifecycle import RULES
from .models import CellBank, CMLot, Culture, Harvest, LotStatus, LyophilisationRun, PackagingRun, Passage
from .selectors import count_subquery

IN_PROGRESS = (LotStatus.POOLED, LotStatus.FREEZE_DRYING)
LOTS_SHOWN = 8
LOT = "batches.cmlot"


def next_step(status: str) -> str:
    """The unsigned move a lab lot makes next, as the pipeline describes it."""
    for rule in RULES.values():
        if status in rule.from_states and not rule.signed and not rule.automatic and roles.LAB_STAFF in rule.roles:
            return f"next: {LotStatus(rule.to).label} — {rule.description}"
    return ""


def lot_blockers(lot: CMLot) -> list[str]:
    """What stops ``lot`` (loaded with its drying run) from its next step, in words."""
    found = ["on hold"] if lot.on_hold else []
    if lot.status == LotStatus.POOLED:
        found += [f"{step} not verified" for step, by, verifier in (
            ("pooling", lot.pooled_by_id, lot.pool_verified_by_id),
            ("filtration", lot.filtration_performed_by_id, lot.filtration_verified_by_id),
            ("concentration", lot.concentration_performed_by_id, lot.concentration_verified_by_id),
        ) if by and not verifier]
        if lot.filtration_performed_by_id is None:
            found.append("filtration not recorded")
    elif lot.status == LotStatus.FREEZE_DRYING:
        run = getattr(lot, "lyophilisation_run", None)
        if run is None or run.completed_at is None:
            found.append("drying run not completed")
        elif run.verified_by_id is None:
            found.append("drying run not verified")
    return found


def lab_lot_rows(user) -> list[HomeRow]:
    """One row per stage (count of lots, next step, how many are blocked), then the newest lots in progress."""
    live = CMLot.objects.filter(status__in=IN_PROGRESS, voided_at__isnull=True)
    # Lots and lots on hold per stage by one aggregate query.
    counts, held = {}, {}
    for status, n, on_hold in (live.order_by().values_list("status")
                               .annotate(n=Count("id"), held=Count("id", filter=Q(on_hold=True)))):
        counts[status], held[status] = n, on_hold
    rows = []
    for status in IN_PROGRESS:
        detail = next_step(status)
        if held.get(status):
            detail += f" · {held[status]} on hold"
        rows.append(HomeRow(label=f"lots {LotStatus(status).label}", count=counts.get(status, 0), changelist=LOT,
                            query={"status__exact": status}, detail=detail))
    for lot in live.select_related("product", "lyophilisation_run").order_by("-id")[:LOTS_SHOWN]:
        blockers = lot_blockers(lot)
        rows.append(HomeRow(label=f"{lot.lot_number} ({lot.get_status_display()}, {lot.product.name})",
                            count=len(blockers), changelist=LOT, query={"lot_number": lot.lot_number},
                            detail=("blocked: " + ", ".join(blockers)) if blockers else "ready for its next step"))
    return rows


# (model, label, changelist, extra filter): performed steps a second person verifies (211.188(b)).
STEP_MODELS = (
    (CellBank, "cell banks", "batches.cellbank", {}),
    (Culture, "cultures", "batches.culture", {}),
    (Passage, "passages (verify from the cultures list)", "batches.culture", {}),
    (Harvest, "harvests", "batches.harvest", {}),
    (LyophilisationRun, "freeze-drying runs", "batches.lyophilisationrun", {"completed_at__isnull": False}),
    (PackagingRun, "packaging runs", "batches.packagingrun", {}),
)
LOT_STEPS = (  # lot steps: (label, performer, verifier)
    ("pooling", "pooled_by", "pool_verified_by"),
    ("filtration", "filtration_performed_by", "filtration_verified_by"),
    ("concentration", "concentration_performed_by", "concentration_verified_by"),
)


def verification_rows(user) -> list[HomeRow]:
    """Performed, unverified, live steps that ``user`` did not perform: one count per kind of step, all by ONE
    query (the lot steps as filtered counts over the lots, each other kind of step a scalar subquery beside them)."""
    def waiting(model, extra) -> Subquery:
        return count_subquery(model.objects.filter(performed_by__isnull=False, verified_by__isnull=True,
                                                   voided_at__isnull=True, **extra).exclude(performed_by=user))

    steps = {f"step{i}": waiting(model, extra) for i, (model, _label, _changelist, extra) in enumerate(STEP_MODELS)}
    # Grouped by a constant (no GROUP BY at all): one row of aggregates, whatever the number of lots.
    counts = (CMLot.objects.filter(voided_at__isnull=True).order_by().annotate(one=Value(1)).values("one")
              .annotate(**{step: Count("id", filter=Q(**{f"{performer}__isnull": False, f"{verifier}__isnull": True})
                                   & ~Q(**{performer: user}))
                           for step, performer, verifier in LOT_STEPS}, **steps)
              .values(*(step for step, _performer, _verifier in LOT_STEPS), *steps).get())
    rows = []
    for i, (model, label, changelist, extra) in enumerate(STEP_MODELS):
        if count := counts[f"step{i}"]:
            query = {} if model is Passage else {"verified_by__isnull": "True", **{k: str(v) for k, v in extra.items()}}
            rows.append(HomeRow(label=label, count=count, changelist=changelist, query=query))
    for step, performer, verifier in LOT_STEPS:
        if counts[step]:
            rows.append(HomeRow(label=f"lot {step} steps", count=counts[step], changelist=LOT,
                                query={f"{performer}__isnull": "False", f"{verifier}__isnull": "True"}))
    return rows


home_section_add(key="lab-lots", title="Lots in progress", roles=[roles.LAB_STAFF], rows=lab_lot_rows, order=10,
                 empty="No lot in progress.")
home_section_add(key="lab-verify", title="Waiting for your verification", roles=[roles.LAB_STAFF],
                 rows=verification_rows, order=20, empty="No step waits for your verification.")
