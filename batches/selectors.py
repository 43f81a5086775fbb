"""Reads of the manufacturing record: lot list/detail with constant query counts, genealogy, traceability.

Contracts other apps rely on:

- ``lot_get(lot_number) -> CMLot`` (raises NotFound, 404)
- ``lot_participant_ids(lot) -> set[int]``: every user who performed or verified a step of the lot, its
  harvests, their cultures and passages, its freeze-drying and packaging runs (rule 2, four eyes).
- ``lot_donors(lot) -> list[CellSource]``: the donors in the lot's genealogy (rule 3).
- ``lot_list_queryset()`` / ``lot_detail_queryset()``: annotated querysets; ``lot_signoffs(lots)`` and
  ``lot_releases(lots)`` add the sign-off (release) signatures of a page of lots in ONE query.
- ``vial_trace(serial)`` / ``donor_trace(code)``: rule 9, both directions.
- ``lots_genealogy_records(lot_ids) -> {lot pk: GenealogyRecords}``: every upstream record of many lots in a
  fixed number of queries (what qc's lot sign-off covers, field list v2).
- ``register_vial_destinations(fn)``: ``fn(vial_ids) -> {vial_id: [destination dict]}``; shipping registers
  where vials went for the traces; ``register_vial_consignees(fn)``: ``fn(lot_ids) -> {consignee name}`` their
  live vials went to, so the donor trace reaches every consignee.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import (
    CharField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Coalesce

from cmlims.exceptions import NotFound

from .models import (
    CellSource,
    CMLot,
    Culture,
    Harvest,
    HarvestContribution,
    LotStatus,
    LyophilisationPhase,
    LyophilisationRun,
    PackagingRun,
    Passage,
    Vial,
    VialStatus,
)

_destinations: list[Callable[[list[int]], dict[int, list[dict]]]] = []


def register_vial_destinations(fn: Callable[[list[int]], dict[int, list[dict]]]) -> None:
    if fn not in _destinations:
        _destinations.append(fn)


def vial_destinations(vial_ids: list[int]) -> dict[int, list[dict]]:
    merged: dict[int, list[dict]] = defaultdict(list)
    for fn in _destinations:
        for vial_id, rows in fn(vial_ids).items():
            merged[vial_id].extend(rows)
    return merged


_vial_consignees: list[Callable[[list[int]], set[str]]] = []


def register_vial_consignees(fn: Callable[[list[int]], set[str]]) -> None:
    """``fn(lot ids) -> {consignee name}`` every live vial of those lots went to: the donor trace reaches every
    consignee (shipping registers it; without it no consignee is known)."""
    _vial_consignees[:] = [fn]


def vial_consignees(lot_ids: list[int]) -> list[str]:
    return sorted(_vial_consignees[0](lot_ids)) if _vial_consignees and lot_ids else []


# --- lots ------------------------------------------------------------------------------------------------


def _vial_count(status: str) -> Coalesce:
    # Correlated subqueries: evaluated only for the rows of the page, served by the (lot, status) index.
    counted = (
        Vial.objects.filter(lot=OuterRef("pk"), status=status, voided_at__isnull=True)
        .order_by().values("lot").annotate(n=Count("pk")).values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def lot_list_queryset() -> QuerySet[CMLot]:
    """Lots with product and vial counts by status (``vials_<status>``) in the same query."""
    return (
        CMLot.objects.filter(voided_at__isnull=True)
        .select_related("product")
        .annotate(**{f"vials_{status}": _vial_count(status) for status in VialStatus.values})
    )


# The lot list's row (API): plain values, no model instances (B1 in benchmarks/): the page is one query.
LOT_LIST_VALUES = ("id", "lot_number", "product__name", "product__gtin", "status", "on_hold", "hold_reason",
                   "expiry", "volume_in_ml", "volume_out_ml", "yield_percent", "created_at",
                   *(f"vials_{status}" for status in VialStatus.values))


def _has_signoff() -> Exists:
    # Whether a row has a sign-off, in the page's own query (served by the signatures' subject index): the
    # sign-off read and its content check then cover only the signed rows, and a page without one costs no query.
    from cmlims.esign.models import Meaning, Signature

    # The content type by its natural key (an uncorrelated subquery, run once), not its id: the queryset is
    # built once per process (below) and must stay right if the content types are ever re-created.
    lot_type = ContentType.objects.filter(app_label=CMLot._meta.app_label, model=CMLot._meta.model_name)
    return Exists(Signature.objects.filter(
        content_type=Subquery(lot_type.values("pk")[:1]),
        meaning__in=[Meaning.RELEASED, Meaning.REJECTED, Meaning.RECALLED],
        object_id=Cast(OuterRef("pk"), CharField())))


@functools.cache
def _lot_list_values_built() -> QuerySet:
    return lot_list_queryset().annotate(has_signoff=_has_signoff()).values(*LOT_LIST_VALUES, "has_signoff")


def lot_list_values() -> QuerySet:
    """``lot_list_queryset`` as dicts of ``LOT_LIST_VALUES`` and ``has_signoff`` (filters and cursor pagination
    work on it as on the model queryset)."""
    # Composing the five count subqueries and the EXISTS took longer than cloning the result (B1): built once
    # per process, never evaluated itself, cloned for each request.
    return _lot_list_values_built().all()


def lot_detail_queryset() -> QuerySet[CMLot]:
    """Everything the lot detail and genealogy show, in a fixed number of queries."""
    return lot_list_queryset().select_related(
        "pooled_by", "pool_verified_by", "filtration_performed_by", "filtration_verified_by",
        "concentration_performed_by", "concentration_verified_by", "lyophilisation_run",
        "lyophilisation_run__performed_by", "lyophilisation_run__verified_by", "lyophilisation_run__completed_by",
        "packaging_run", "packaging_run__performed_by", "packaging_run__verified_by",
        "packaging_run__storage_location",
    ).prefetch_related(
        Prefetch("contributions", queryset=_contributions_upstream()),
        Prefetch("lyophilisation_run__phases",
                 queryset=LyophilisationPhase.objects.filter(voided_at__isnull=True).order_by("started_at")),
    )


def record_get(model: type[models.Model], **lookup) -> models.Model:
    """The one record of ``model`` with ``lookup`` (its key: pk, code, run number, serial). A key of the wrong
    form (``harvests/abc/``) finds nothing, like an unknown one: NotFound (404), never a 500."""
    try:
        found = model.objects.filter(**lookup).first()
    except (ValueError, TypeError, ValidationError):
        found = None
    if found is None:
        label = ", ".join(f"{k}={v}" for k, v in lookup.items())
        raise NotFound(f"{model._meta.verbose_name} {label} does not exist")
    return found


def lot_get(lot_number: str, queryset: QuerySet[CMLot] | None = None) -> CMLot:
    try:
        return (queryset if queryset is not None else CMLot.objects.select_related("product")).get(
            lot_number=lot_number)
    except CMLot.DoesNotExist as exc:
        raise NotFound(f"lot {lot_number} does not exist") from exc


def vial_counts(lot: CMLot) -> dict[str, int]:
    """Counts by vial status from the annotations of ``lot_list_queryset`` (or one query otherwise)."""
    if hasattr(lot, "vials_available"):
        return {status: getattr(lot, f"vials_{status}") for status in VialStatus.values}
    counts = dict(lot.vials.filter(voided_at__isnull=True).values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in VialStatus.values}


def lot_signoffs(lots: Iterable[CMLot | dict], *, live: bool = False) -> dict[int, list]:
    """{lot pk: its sign-off Signatures (released, rejected, recalled), oldest first} for a page of lots in one
    query; each carries ``current_status`` (whether a signed field changed since). A list page (the default)
    reads each signature's stored check (one query), fresh unless a write to a record the signature covers
    came after it, and checks only the stale ones from their records; ``live`` (a lot's own page) checks
    every one from the records now. The checks of a page run in a few queries whatever its size (none when
    it has no signature; a list page with stale checks reads their signed content in one more). ``lots`` are
    model instances or ``lot_list_values`` rows (then the lots checked from their records are read as instances
    in one query)."""
    from cmlims.esign.models import Meaning, Signature
    from cmlims.esign.services import signature_checks_recorded, signature_current_statuses

    # Rows of lot_list_values say whether they have a sign-off: only those are looked up (none: no query).
    lots = [lot for lot in lots if not isinstance(lot, dict) or lot.get("has_signoff", True)]
    ids = [str(lot["id"] if isinstance(lot, dict) else lot.pk) for lot in lots]
    if not ids:
        return {}
    content_type = ContentType.objects.get_for_model(CMLot)  # cached after the first call
    # One array parameter for the page's ids (a page of 500 released lots: 500 placeholders otherwise).
    signatures = Signature.objects.filter(content_type=content_type, object_id__in_texts=ids,
                                          meaning__in=[Meaning.RELEASED, Meaning.REJECTED, Meaning.RECALLED])
    if not live:  # what was signed (~500 keys of JSON a lot) is read only for the checks a write made stale
        signatures = signatures.defer("content", "signed_fields")
    signatures = list(signatures.order_by("signed_at", "id"))
    out: dict[int, list] = {}
    for signature in signatures:
        out.setdefault(int(signature.object_id), []).append(signature)
    statuses = {} if live or not signatures else signature_checks_recorded(signatures)
    unchecked = [s for s in signatures if s.pk not in statuses]
    if unchecked and not live:
        full = Signature.objects.in_bulk([s.pk for s in unchecked])
        unchecked = [full[s.pk] for s in unchecked]
    if unchecked:
        by_pk = {lot.pk: lot for lot in lots if not isinstance(lot, dict)}
        unread = {int(s.object_id) for s in unchecked} - by_pk.keys()
        if unread:  # the content check reads the signed lot's fields: only the signed rows of a page
            by_pk.update(CMLot.objects.in_bulk(sorted(unread)))
        statuses.update(signature_current_statuses([(by_pk[int(s.object_id)], s) for s in unchecked]))
    for signature in signatures:
        signature.current_status = statuses.get(signature.pk)
    return out


def lot_releases(lots: Iterable[CMLot], signoffs: dict[int, list] | None = None) -> dict[int, object]:
    """{lot pk: the 'released' Signature} (the newest if several), from ``lot_signoffs`` (pass it if known)."""
    from cmlims.esign.models import Meaning

    signoffs = lot_signoffs(lots) if signoffs is None else signoffs
    return {pk: released[-1] for pk, signatures in signoffs.items()
            if (released := [s for s in signatures if s.meaning == Meaning.RELEASED])}


def lot_participant_ids(lot: CMLot) -> set[int]:
    """Every user who performed or verified a step of ``lot`` (rule 2: they may not release it)."""
    people: set[int] = set()
    lot_row = CMLot.objects.filter(pk=lot.pk).values(
        "pooled_by", "pool_verified_by", "filtration_performed_by", "filtration_verified_by",
        "concentration_performed_by", "concentration_verified_by",
        "lyophilisation_run__performed_by", "lyophilisation_run__verified_by", "lyophilisation_run__completed_by",
        "packaging_run__performed_by", "packaging_run__verified_by",
    ).first() or {}
    people.update(v for v in lot_row.values() if v)
    harvest_ids = list(HarvestContribution.objects.filter(lot=lot).values_list("harvest_id", flat=True))
    people.update(HarvestContribution.objects.filter(lot=lot).values_list("added_by", flat=True))
    harvests = Harvest.objects.filter(pk__in=harvest_ids)
    culture_ids = set(harvests.values_list("culture_id", flat=True))
    for rows in (
        harvests.values_list("performed_by", "verified_by"),
        Culture.objects.filter(pk__in=culture_ids).values_list("performed_by", "verified_by"),
        Passage.objects.filter(culture_id__in=culture_ids).values_list("performed_by", "verified_by"),
    ):
        for performed, verified in rows:
            people.update(uid for uid in (performed, verified) if uid)
    people.update(_past_verifier_ids(lot))
    return people


# The attnames a verification writes; an edit clears them (verification_clear), the trail keeps who verified.
VERIFIER_ATTNAMES = ("verified_by_id", "pool_verified_by_id", "filtration_verified_by_id",
                     "concentration_verified_by_id")


def _past_verifier_ids(lot: CMLot) -> set[int]:
    """Everyone who ever verified a step of ``lot``, read from the audit trail: a later edit clears the
    verification on the record, not the fact that this person checked the step (rule 2 still counts them)."""
    from cmlims.models import AuditEntry

    harvests = Harvest.objects.filter(contributions__lot=lot)
    cultures = Culture.objects.filter(harvests__contributions__lot=lot)
    steps = [CMLot.objects.filter(pk=lot.pk), harvests, cultures, Passage.objects.filter(culture__in=cultures),
             LyophilisationRun.objects.filter(lot=lot), PackagingRun.objects.filter(lot=lot)]
    records = Q(pk__in=[])
    for queryset in steps:
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True).distinct()]
        if ids:
            records |= Q(object_type=queryset.model._meta.label_lower, object_id__in=ids)
    entries = AuditEntry.objects.filter(records, changes__has_any_keys=VERIFIER_ATTNAMES, user__isnull=False)
    # An entry that sets a verifier to its own author is a verification (a clearing entry sets None).
    return {user_id for user_id, changes in entries.values_list("user_id", "changes")
            if any((changes.get(name) or [None, None])[1] == user_id for name in VERIFIER_ATTNAMES)}


def harvests_poolable(queryset: QuerySet[Harvest]) -> QuerySet[Harvest]:
    """Harvests that can still join a pool: not voided, and with volume left after the lots (not voided) that
    already drew from them (what the pooling form offers; the pooling service checks it again under lock)."""
    taken = (HarvestContribution.objects.filter(harvest=OuterRef("pk"), lot__voided_at__isnull=True)
             .values("harvest").annotate(total=models.Sum("volume_ml")).values("total"))
    return (queryset.filter(voided_at__isnull=True)
            .annotate(taken_ml=Coalesce(Subquery(taken, output_field=models.DecimalField()), Value(Decimal("0")),
                                        output_field=models.DecimalField()))
            .filter(volume_ml__gt=models.F("taken_ml")))


def lots_awaiting_drying(queryset: QuerySet[CMLot]) -> QuerySet[CMLot]:
    """Lots a freeze-drying run can be started for: pooled, not voided, no run yet."""
    return queryset.filter(status=LotStatus.POOLED, voided_at__isnull=True, lyophilisation_run__isnull=True)


def lot_donors(lot: CMLot) -> list[CellSource]:
    """The donors in ``lot``'s genealogy (through harvests → cultures → banks)."""
    return list(CellSource.objects.filter(banks__cultures__harvests__contributions__lot=lot).distinct()
                .order_by("code"))


def _person(user) -> str | None:
    return (user.get_full_name() or user.get_username()) if user else None


# The contributions of a lot with everything upstream of them, in one query (the lot detail prefetches them,
# the vial trace reads them by the vial's lot).
CONTRIBUTION_UPSTREAM = ("harvest", "harvest__culture", "harvest__culture__bank", "harvest__culture__bank__source",
                         "harvest__culture__bank__parent_bank", "harvest__performed_by", "harvest__verified_by")


def _contributions_upstream() -> QuerySet[HarvestContribution]:
    return (HarvestContribution.objects.select_related(*CONTRIBUTION_UPSTREAM)
            .order_by("harvest__culture__code", "harvest__sequence"))


def _upstream(contributions: Iterable[HarvestContribution]) -> dict:
    """donors, banks, cultures and harvests of a lot from its contributions (read with CONTRIBUTION_UPSTREAM)."""
    donors: dict[str, dict] = {}
    banks: dict[str, dict] = {}
    cultures: dict[str, dict] = {}
    harvests = []
    for c in contributions:
        h = c.harvest
        culture, bank = h.culture, h.culture.bank
        source = bank.source
        donors.setdefault(source.code, {
            "code": source.code, "tissue": source.tissue, "eligibility": source.eligibility_status,
            "consent": source.consent_status, "eligible_with_consent": source.is_eligible_with_consent,
        })
        banks.setdefault(bank.code, {
            "code": bank.code, "kind": bank.kind, "donor": source.code, "passage_at_freeze": bank.passage_at_freeze,
            "parent_bank": bank.parent_bank.code if bank.parent_bank else None,
            "identity_conforms": bank.identity_conforms,
        })
        cultures.setdefault(culture.code, {
            "code": culture.code, "bank": bank.code, "status": culture.status,
            "started_at": culture.started_at, "conditioning_started_at": culture.conditioning_started_at,
        })
        harvests.append({
            "harvest": str(h), "culture": culture.code, "collected_at": h.conditioning_ended_at,
            "harvest_volume_ml": h.volume_ml, "volume_taken_ml": c.volume_ml,
            "conditioning_hours": h.conditioning_hours, "performed_by": _person(h.performed_by),
            "verified_by": _person(h.verified_by),
        })
    return {"donors": list(donors.values()), "banks": list(banks.values()), "cultures": list(cultures.values()),
            "harvests": harvests}


def lot_genealogy(lot: CMLot) -> dict:
    """donor → bank → cultures → harvests (volumes) → lot (volumes, yield) → runs → vials, from a lot of
    ``lot_detail_queryset`` (no further queries but the vial counts it already carries)."""
    run = getattr(lot, "lyophilisation_run", None)
    pack = getattr(lot, "packaging_run", None)
    return {
        **_upstream(lot.contributions.all()),
        "processing": {
            "volume_in_ml": lot.volume_in_ml, "pooled_by": _person(lot.pooled_by),
            "pool_verified_by": _person(lot.pool_verified_by),
            "filter_pore_size_um": lot.filter_pore_size_um, "integrity_test_method": lot.integrity_test_method,
            "integrity_test_passed": lot.integrity_test_passed, "volume_filtered_ml": lot.volume_filtered_ml,
            "filtration_performed_by": _person(lot.filtration_performed_by),
            "filtration_verified_by": _person(lot.filtration_verified_by),
            "concentration_cutoff_kda": lot.concentration_cutoff_kda,
            "concentration_factor": lot.concentration_factor, "volume_out_ml": lot.volume_out_ml,
            "yield_percent": lot.yield_percent,
            "concentration_performed_by": _person(lot.concentration_performed_by),
            "concentration_verified_by": _person(lot.concentration_verified_by),
        },
        "freeze_drying": None if run is None else {
            "run_number": run.run_number, "dryer": run.dryer, "recipe": f"{run.recipe} v{run.recipe_version}",
            "vials_loaded": run.vials_loaded, "fill_volume_ml": run.fill_volume_ml,
            "completed": run.is_complete, "started_at": run.started_at, "ended_at": run.ended_at,
            "end_of_primary_drying": run.get_end_of_primary_drying_method_display() or None,
            "stoppering": run.get_stoppering_method_display() or None, "alarm_count": run.alarm_count,
            "performed_by": _person(run.performed_by), "verified_by": _person(run.verified_by),
            "phases": [
                {"phase": p.phase, "shelf_temperature_setpoint_c": p.shelf_temperature_setpoint_c,
                 "shelf_temperature_actual_c": p.shelf_temperature_actual_c,
                 "chamber_pressure_setpoint_mbar": p.chamber_pressure_setpoint_mbar,
                 "chamber_pressure_actual_mbar": p.chamber_pressure_actual_mbar,
                 "duration_minutes": p.duration_minutes}
                for p in run.phases.all()
            ],
        },
        "packaging": None if pack is None else {
            "run_number": pack.run_number, "vials_loaded": run.vials_loaded if run else None,
            "vials_packaged": pack.vials_packaged, "vials_rejected": pack.vials_rejected,
            "vials_unaccounted": (run.vials_loaded - pack.vials_packaged - pack.vials_rejected) if run else None,
            "ended_at": pack.ended_at, "storage_location": pack.storage_location.code,
            "performed_by": _person(pack.performed_by), "verified_by": _person(pack.verified_by),
        },
        "vials": vial_counts(lot),
    }


@dataclass
class GenealogyRecords:
    """Every upstream record of one lot as rows (what a sign-off covers besides the lot and its QC)."""

    contributions: list = field(default_factory=list)
    harvests: list = field(default_factory=list)
    cultures: list = field(default_factory=list)
    passages: list = field(default_factory=list)
    banks: list = field(default_factory=list)
    donors: list = field(default_factory=list)
    lyophilisation_run: LyophilisationRun | None = None
    phases: list = field(default_factory=list)
    packaging_run: PackagingRun | None = None
    vial_count: int = 0


def lots_genealogy_records(lot_ids: Iterable[int]) -> dict[int, GenealogyRecords]:
    """{lot pk: GenealogyRecords} for many lots in six queries whatever their size: contributions with their
    harvest, culture, bank (and its master bank) and donor; passages; runs; phases; packaging runs; vial count."""
    lot_ids = list(lot_ids)
    out = {pk: GenealogyRecords() for pk in lot_ids}
    if not lot_ids:
        return out
    contributions = HarvestContribution.objects.filter(lot_id__in=lot_ids).select_related(
        "harvest__culture__bank__source", "harvest__culture__bank__parent_bank__source").order_by("id")
    cultures_of: dict[int, set[int]] = defaultdict(set)
    for c in contributions:
        records = out[c.lot_id]
        culture = c.harvest.culture
        records.contributions.append(c)
        records.harvests.append(c.harvest)
        for bank in (culture.bank, culture.bank.parent_bank):
            if bank is not None and bank not in records.banks:
                records.banks.append(bank)
                if bank.source not in records.donors:
                    records.donors.append(bank.source)
        if culture not in records.cultures:
            records.cultures.append(culture)
        cultures_of[culture.pk].add(c.lot_id)
    for passage in Passage.objects.filter(culture_id__in=cultures_of).select_related("culture").order_by("id"):
        for lot_pk in cultures_of[passage.culture_id]:
            out[lot_pk].passages.append(passage)
    runs = {run.pk: run for run in LyophilisationRun.objects.filter(lot_id__in=lot_ids)}
    for run in runs.values():
        out[run.lot_id].lyophilisation_run = run
    for phase in LyophilisationPhase.objects.filter(run_id__in=runs).order_by("id"):
        out[runs[phase.run_id].lot_id].phases.append(phase)
    for pack in PackagingRun.objects.filter(lot_id__in=lot_ids):
        out[pack.lot_id].packaging_run = pack
    for lot_pk, n in (Vial.objects.filter(lot_id__in=lot_ids, voided_at__isnull=True).order_by()
                      .values_list("lot_id").annotate(n=Count("pk"))):
        out[lot_pk].vial_count = n
    return out


def lot_timeline_children(lot: CMLot) -> list:
    """What the lot's audit timeline covers besides the lot itself (cmlims.timeline registry)."""
    from cmlims.esign.models import Signature

    signature_ids = Signature.objects.filter(
        content_type=ContentType.objects.get_for_model(CMLot), object_id=str(lot.pk)).values_list("pk", flat=True)
    return [
        lot.contributions.all(),
        Harvest.objects.filter(contributions__lot=lot),
        LyophilisationRun.objects.filter(lot=lot),
        PackagingRun.objects.filter(lot=lot),
        lot.vials.all(),
        ("esign.signature", list(signature_ids)),
    ]


def run_timeline_children(run) -> list:
    return [run.phases.all()]


# --- traceability (rule 9) -------------------------------------------------------------------------------


def vial_trace(serial: str) -> dict:
    """vial → lot → harvests → cultures → bank → donor (and where the vial went, if shipping registered)."""
    # Two queries whatever the genealogy (B8): the lot's contributions with everything upstream, the lot and the
    # vial's own fields joined to them (one row per contribution), then where the vial went. A lot with no
    # contribution (none is pooled without one) falls back to reading the vial alone.
    rows = list(_contributions_upstream().filter(lot__vials__serial=serial).select_related("lot", "lot__product")
                .annotate(vial_pk=F("lot__vials__pk"), vial_status=F("lot__vials__status"),
                          vial_location=F("lot__vials__storage_location__code")))
    if rows:
        lot, first = rows[0].lot, rows[0]
        vial = {"pk": first.vial_pk, "status": first.vial_status, "location": first.vial_location}
    else:
        try:
            found = Vial.objects.select_related("lot", "lot__product", "storage_location").get(serial=serial)
        except Vial.DoesNotExist as exc:
            raise NotFound(f"vial {serial} does not exist") from exc
        lot = found.lot
        vial = {"pk": found.pk, "status": found.status,
                "location": found.storage_location.code if found.storage_location else None}
    genealogy = _upstream(rows)
    return {
        "vial": {"serial": serial, "status": vial["status"], "storage_location": vial["location"],
                 "destinations": vial_destinations([vial["pk"]]).get(vial["pk"], [])},
        "lot": {"lot_number": lot.lot_number, "product": lot.product.name, "gtin": lot.product.gtin,
                "status": lot.status, "expiry": lot.expiry},
        "harvests": genealogy["harvests"],
        "cultures": genealogy["cultures"],
        "banks": genealogy["banks"],
        "donors": genealogy["donors"],
    }


# The donor trace shows the first rows and the totals: the busiest donor of a ten-year site has thousands of
# lots and hundreds of thousands of vials, which no response (and no reader) takes in at once.
DONOR_TRACE_ROWS = 100


def _count(expression: str, *, distinct: bool = False) -> Func:
    # COUNT as a plain function (not an aggregate), so a correlated subquery needs no GROUP BY.
    return Func(F(expression), function="COUNT",
                template="%(function)s(DISTINCT %(expressions)s)" if distinct else "%(function)s(%(expressions)s)",
                output_field=IntegerField())


def count_subquery(queryset: QuerySet) -> Subquery:
    """``COUNT(*)`` of ``queryset`` as a scalar subquery: an outer query reads many counts in one round trip."""
    return Subquery(queryset.order_by().annotate(n=_count("pk")).values("n")[:1], output_field=IntegerField())


def donor_trace(code: str, *, rows: int = DONOR_TRACE_ROWS) -> dict:
    """donor → banks → cultures → lots (volume from this donor, vials by status) → vials and their destinations;
    the first ``rows`` lots and vials (oldest lot first) plus the totals, and every consignee, in eight queries
    whatever the donor's size: the donor's lot ids, the donor with its banks, the contributions of the lots
    shown, their vial counts, the vials shown, their destinations, the vial total, and the consignees."""
    contributions = HarvestContribution.objects.filter(harvest__culture__bank__source__code=code,
                                                       lot__voided_at__isnull=True)
    # The donor's lots read once and written into the later queries as a list: PostgreSQL then knows how many
    # there are. As a subquery through cultures and harvests it guessed 200 for the busiest donor's 13,861 at
    # the default scale, and hash-joined every vial of the site for the consignees and the vial total (2.1 s
    # and 1.3 s of the trace's 3.6 s).
    lot_ids = list(contributions.order_by("lot_id").values_list("lot_id", flat=True).distinct())
    # The donor and its banks by one LEFT JOIN (a donor without banks: one row of NULL bank fields).
    found = list(CellSource.objects.filter(code=code).order_by("banks__code").values(
        "code", "tissue", "eligibility_status", "consent_status", "banks__code", "banks__kind",
        "banks__passage_at_freeze"))
    if not found:
        raise NotFound(f"donor {code} does not exist")
    source = found[0]
    banks = [{"code": b["banks__code"], "kind": b["banks__kind"], "passage_at_freeze": b["banks__passage_at_freeze"]}
             for b in found if b["banks__code"] is not None]
    shown_ids = lot_ids[:rows]
    statuses = VialStatus.values  # the enum builds this list anew on every access
    lots: dict[int, dict] = {}
    # The shown lots' contributions found by their lots and the other donors' (a pool of several) left out here:
    # filtered by the donor's code as well, PostgreSQL walked from the donor through all its 27,722 harvests
    # to find the 200 of the lots shown (58 ms, B8b).
    for c in (HarvestContribution.objects.filter(lot_id__in=shown_ids).order_by("lot_id", "harvest_id")
              .values("lot_id", "lot__lot_number", "lot__product__name", "lot__status", "lot__on_hold",
                      "lot__expiry", "volume_ml", "harvest__culture__code", "harvest__culture__bank__source__code")):
        if c["harvest__culture__bank__source__code"] != code:
            continue
        entry = lots.setdefault(c["lot_id"], {
            "lot_number": c["lot__lot_number"], "product": c["lot__product__name"], "status": c["lot__status"],
            "on_hold": c["lot__on_hold"], "expiry": c["lot__expiry"], "volume_from_donor_ml": Decimal("0"),
            "cultures": set(), "vials": dict.fromkeys(statuses, 0),
        })
        entry["volume_from_donor_ml"] += c["volume_ml"]
        entry["cultures"].add(c["harvest__culture__code"])
    # The shown lots' vials counted by one GROUP BY (the lots alone, not also the donor's every lot: the two lists
    # made the planner scan far more). As five correlated counts per row of the query above it was one query
    # less but 60 % slower (16 against 10 ms for the top donor of `small`).
    for lot_id, status, n in (Vial.objects.filter(lot_id__in=list(lots), voided_at__isnull=True).order_by()
                              .values_list("lot_id", "status")
                              .annotate(n=Count("pk"))):
        lots[lot_id]["vials"][status] = n
    live = Vial.objects.filter(lot_id__in_ids=lot_ids, voided_at__isnull=True)
    first = list(live.order_by("lot_id", "sequence").values("pk", "serial", "status", "lot__lot_number")[:rows])
    destinations = vial_destinations([v["pk"] for v in first])
    # Every vial of the donor counted (an index-only scan of the live vials' partial index) and every consignee
    # they went to, not only the rows shown.
    vial_total = live.count() if lot_ids else 0
    consignees = vial_consignees(lot_ids)
    return {
        "donor": {"code": source["code"], "tissue": source["tissue"], "eligibility": source["eligibility_status"],
                  "consent": source["consent_status"]},
        "banks": banks,
        "lots": [{**entry, "cultures": sorted(entry["cultures"])} for entry in lots.values()],
        "lot_count": len(lot_ids),
        "vials": [{"serial": v["serial"], "lot_number": v["lot__lot_number"], "status": v["status"],
                   "destinations": destinations.get(v["pk"], [])} for v in first],
        "vial_count": vial_total,
        "rows_shown": rows,
        "consignees": consignees,
    }


def lot_rule4_conditions(lot: CMLot, *, today: date) -> list[dict]:
    """Rule 4 for a lot (DESIGN): why its vials may not be allocated or get a final label now, as
    ``{code, detail}`` ([] = they may). The one definition shared by final labels and shipping."""
    conditions = []
    if lot.voided_at is not None:
        conditions.append({"code": "lot_voided", "detail": f"lot {lot.lot_number} is voided"})
    if lot.status != LotStatus.RELEASED:
        conditions.append({"code": "lot_not_released", "detail": f"lot {lot.lot_number} is {lot.status}"})
    if lot.on_hold:
        conditions.append({"code": "lot_on_hold", "detail": f"lot {lot.lot_number} is on hold: {lot.hold_reason}"})
    if lot.expiry is None or lot.expiry < today:
        conditions.append({"code": "lot_expired", "detail": f"lot {lot.lot_number} expiry {lot.expiry or 'not set'}"})
    return conditions


def lot_search_q(term: str) -> Q:
    """Lot number, vial serial or donor code (the admin's and the API's search)."""
    term = term.strip()
    # A scanned vial serial (the commonest search at the bench) is its lot: one lookup by the serial's unique
    # index, not a scan of every lot number for the text (B2c).
    lot_id = Vial.objects.filter(serial=term).values_list("lot_id", flat=True).first()
    if lot_id is not None:
        return Q(pk=lot_id)
    return (Q(lot_number__icontains=term)
            | Q(pk__in=HarvestContribution.objects.filter(harvest__culture__bank__source__code=term)
                .values("lot_id")))


# Where a vial is once it has left the store: not the freezer it was packed into (that row keeps the
# last store it was in, for the genealogy).
VIAL_OFF_SITE = {
    VialStatus.SHIPPED: "in transit (shipped)",
    VialStatus.RECEIVED: "at the consignee (received)",
    VialStatus.DESTROYED: "destroyed",
}


def vial_location_text(vial: Vial) -> str:
    """The vial's location as a person should read it (no query: ``storage_location`` is selected with it)."""
    if vial.status in VIAL_OFF_SITE:
        return VIAL_OFF_SITE[vial.status]
    location = vial.storage_location
    return f"{location.code} — {location.name}" if location is not None else "—"
