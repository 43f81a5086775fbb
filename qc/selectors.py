"""Reads for QC: the specification a lot is tested against, the results that count, what blocks sign-off,
and the lot's audit trail since its last review."""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db.models import Q, Subquery
from django.utils import timezone

from batches.models import CMLot, HarvestContribution
from cmlims.esign.selectors import signatures_of
from cmlims.exceptions import NotFound
from cmlims.investigations.selectors import investigations_on
from cmlims.models import AuditEntry
from qc.models import LotAuditReview, QCResult, ResultStatus, Specification, SpecItem, SpecStatus

Condition = dict[str, str]


# --- lookups for the API: one record by its key ------------------------------------------------------------


def lot_by_number(lot_number: str) -> CMLot | None:
    return CMLot.objects.select_related("product").filter(lot_number=lot_number).first()


def user_by_username(username: str):
    return get_user_model().objects.filter(username=username).first()


def result_by_id(result_id: int) -> QCResult | None:
    return QCResult.objects.filter(pk=result_id).first()


def result_detail(result_id: int) -> QCResult:
    """One result with everything its API body shows (lot, item, people, approval signer)."""
    result = QCResult.objects.select_related(
        "lot", "spec_item", "analyst", "entered_by", "approved_by", "approval__signer", "invalidated_by",
        "invalidation__signer").filter(pk=result_id).first()
    if result is None:
        raise NotFound(f"result {result_id} does not exist")
    return result


def specification_get(specification_id: int) -> Specification:
    spec = Specification.objects.filter(pk=specification_id).first()
    if spec is None:
        raise NotFound(f"specification {specification_id} does not exist")
    return spec


_APPROVED = [SpecStatus.IN_FORCE, SpecStatus.SUPERSEDED]
_IN_FORCE_ORDER = ("-effective_from", "-version")


def specification_author_ids(specification: Specification) -> set[int]:
    """Who drafted the version or created or changed any of its items (from the audit trail)."""
    from cmlims.models import AuditEntry

    item_ids = [str(pk) for pk in specification.items.values_list("pk", flat=True)]
    from cmlims.audit import Action

    editors = AuditEntry.objects.filter(
        Q(object_type="qc.specitem", object_id__in=item_ids)
        | Q(object_type="qc.specification", object_id=str(specification.pk)),
        user_id__isnull=False).exclude(action=Action.SIGNATURE_FAILED)  # a failed approval is no authorship
    editors = editors.values_list("user_id", flat=True).distinct()
    return {specification.created_by_id, *editors}


def specification_in_force(product, at) -> Specification | None:
    """The approved version with the latest effective date not after ``at``."""
    return (
        Specification.objects.filter(product=product, status__in=_APPROVED, effective_from__lte=at)
        .order_by(*_IN_FORCE_ORDER).first()
    )


def specification_list(*, product_id=None):
    """Specifications with product, approval signer and items in a fixed number of queries."""
    from django.db.models import Prefetch

    qs = Specification.objects.select_related("product", "approval__signer").prefetch_related(
        Prefetch("items", queryset=SpecItem.objects.order_by("order", "id")))
    if product_id:
        qs = qs.filter(product_id=product_id)
    return qs.order_by("product_id", "-version")


def lot_specification(lot: CMLot) -> Specification | None:
    """A lot is tested against the version in force when it was pooled, by the server's clock: the time the
    pooling was recorded (``created_at``), never the client-supplied ``pooled_at``."""
    cached = getattr(lot, "_qc_specification", False)
    if cached is False:
        cached = specification_in_force(lot.product_id, lot.created_at)
        lot._qc_specification = cached
    return cached


def preload_lot_specifications(lots: list[CMLot]) -> None:
    """``lot_specification`` for a page of lots in one query (kept on each lot, as ``lot_specification``
    keeps it): the newest approved version of the lot's product effective by its pooling."""
    lots = [lot for lot in lots if getattr(lot, "_qc_specification", False) is False]  # not read yet
    if not lots:
        return
    versions = list(Specification.objects.filter(product_id__in={lot.product_id for lot in lots},
                                                  status__in=_APPROVED).order_by(*_IN_FORCE_ORDER))
    for lot in lots:
        lot._qc_specification = next(
            (v for v in versions if v.product_id == lot.product_id and v.effective_from is not None
             and v.effective_from <= lot.created_at), None)


def lot_spec_items_by_test(lots: list[CMLot]) -> dict[int, dict[str, SpecItem]]:
    """{lot id: {test (casefolded): item}} of each lot's specification (``lot_specification``), for any number of
    lots in two queries (a bulk import checks every row against its lot's specification)."""
    preload_lot_specifications(lots)
    specs = {lot._qc_specification.pk: lot._qc_specification for lot in lots if lot._qc_specification}
    items: dict[int, dict[str, SpecItem]] = {pk: {} for pk in specs}
    for item in SpecItem.objects.filter(specification_id__in=specs).order_by("order", "id"):
        item.specification = specs[item.specification_id]
        items[item.specification_id][item.test.casefold()] = item
    return {lot.pk: items[lot._qc_specification.pk] if lot._qc_specification else {} for lot in lots}


def spec_items(specification: Specification | None) -> list[SpecItem]:
    return list(specification.items.order_by("order", "id")) if specification else []


def lot_specification_items(lot: CMLot) -> tuple[Specification | None, list[SpecItem]]:
    """``lot_specification`` and its ``spec_items`` in one query (a certificate, B5): the items of the version in
    force at the lot's pooling (chosen as ``specification_in_force`` chooses, as a subquery) with their version
    joined. A version without items, or none in force, takes a second query to tell which; the version is kept
    on the lot as ``lot_specification`` keeps it."""
    cached = getattr(lot, "_qc_specification", False)
    if cached is not False:
        return cached, spec_items(cached)
    in_force = (Specification.objects.filter(product_id=lot.product_id, status__in=_APPROVED,
                                             effective_from__lte=lot.created_at)
                .order_by(*_IN_FORCE_ORDER).values("pk")[:1])
    items = list(SpecItem.objects.filter(specification_id=Subquery(in_force)).select_related("specification")
                 .order_by("order", "id"))
    specification = items[0].specification if items else lot_specification(lot)
    for item in items:
        item.specification = specification  # one instance for all, as ``specification.items`` would give
    lot._qc_specification = specification
    return specification, items


_RESULTS_ORDER = ("spec_item__order", "spec_item_id", "tested_at", "id")


def _results():
    return (
        QCResult.objects.select_related("spec_item", "analyst", "entered_by", "approved_by", "approval__signer", "lot",
                                        "invalidated_by", "invalidation__signer")
        .order_by(*_RESULTS_ORDER)
    )


def lot_results(lot: CMLot):
    """Every result of the lot, superseded ones included (nothing is hidden), oldest first."""
    return _results().filter(lot=lot)


def lot_results_read(lot: CMLot, *, items: list[SpecItem] | None = None) -> list[QCResult]:
    """``lot_results`` as a list, read once per lot instance: a certificate's table and the content check of
    its signatures (``results_by_lot_instances``) share one read. It joins only what those two read (the item
    and the invalidation's signature, B5): the people are not printed, their ids are in the rows, and the lot is
    this one (any other relation loads on first use)."""
    cached = getattr(lot, "_qc_results", None)
    if cached is None:
        results_by_lot_instances([lot], items=items)
        cached = lot._qc_results
    return cached


def _results_lean():
    # The spec items are read apart (``results_by_lot_instances``): joined, each of a page's 600 results built
    # its own copy of the same 30 items, their JSON lists decoded 1,200 times (B1s).
    return QCResult.objects.select_related("invalidation").order_by(*_RESULTS_ORDER)


def results_by_lot_instances(lots: list[CMLot], *, items: list[SpecItem] | None = None) -> dict[int, list[QCResult]]:
    """``lot_results_read`` for many lot instances in one query (a list page's sign-off content checks), reusing
    what was already read on them. Lean like it: a page of 20 released lots read 600 results with eight joined
    relations each (the lot, the people, the approval's signature and signer: 5,500 model instances, 170 ms of
    the page's 200 ms of CPU) where the content check reads the item and the ids only. Two queries: the
    results, then their spec items once each (shared by every lot of the specification); ``items`` already read
    (a certificate's specification) are not read again."""
    by_pk = {lot.pk: lot for lot in lots if getattr(lot, "_qc_results", None) is None}
    if by_pk:  # all read (a certificate): no empty query is even compiled
        for lot in by_pk.values():
            lot._qc_results = []
        results = list(_results_lean().filter(lot_id__in=list(by_pk)))
        known = {item.pk: item for item in items or ()}
        known.update(SpecItem.objects.in_bulk({r.spec_item_id for r in results} - known.keys()))  # one of each
        for result in results:
            lot = by_pk[result.lot_id]
            result.lot = lot
            result.spec_item = known[result.spec_item_id]
            lot._qc_results.append(result)
    return {lot.pk: lot._qc_results for lot in lots}


def counting_results(lot: CMLot, results: list[QCResult] | None = None) -> dict[int, QCResult]:
    """{spec_item_id: the result that counts}, decided by explicit links only, never by a client's tested_at:
    a correction supersedes its original, a retest replaces the result it is a retest of, an invalidated
    result (a QC officer's signature) counts no more. Of several valid
    results no link orders, a failing one counts (a failure is set aside only explicitly), else the last
    entered."""
    rows = results if results is not None else list(lot_results(lot))
    valid = [r for r in rows if r.status == ResultStatus.VALID]
    retested = {r.retest_of_id for r in valid if r.retest_of_id}
    counting: dict[int, QCResult] = {}
    for result in valid:
        if result.pk in retested:
            continue
        current = counting.get(result.spec_item_id)
        if current is None or (not result.passed, result.pk) > (not current.passed, current.pk):
            counting[result.spec_item_id] = result
    return counting


def results_conditions(lot: CMLot, *, need_pass: bool) -> list[Condition]:
    """Mandatory items without an approved counting result (and, for release, one that passes)."""
    specification = lot_specification(lot)
    if specification is None:
        return [{"code": "no_specification",
                 "detail": f"no specification of {lot.product} was in force when lot {lot.lot_number} was pooled"}]
    counting = counting_results(lot)
    out: list[Condition] = []
    for item in spec_items(specification):
        if not item.mandatory:
            continue
        result = counting.get(item.pk)
        if result is None:
            out.append({"code": "result_missing", "detail": f"{item.test}: no valid result"})
        elif result.approved_at is None:
            out.append({"code": "result_not_approved", "detail": f"{item.test}: the latest result is not approved"})
        elif need_pass and not result.passed:
            out.append({"code": "result_failed",
                        "detail": f"{item.test}: the latest result ({result.value_entered} {result.unit_entered}"
                                  f") fails {item.criterion}".replace(" )", ")")})
    return out


def result_family(result: QCResult) -> list[QCResult]:
    """The result an OOS investigation concerns with every retest and correction linked to it, either way."""
    found: dict[int, QCResult] = {}
    expanded: set[int] = set()
    frontier = {result.pk}
    while frontier:
        rows = QCResult.objects.select_related("spec_item").filter(
            Q(pk__in=frontier) | Q(retest_of_id__in=frontier) | Q(supersedes_id__in=frontier)
            | Q(retests__in=frontier) | Q(superseded_by__in=frontier)).distinct()
        found.update({r.pk: r for r in rows})
        expanded |= frontier
        frontier = set(found) - expanded
    return sorted(found.values(), key=lambda r: r.pk)


def result_participants(result: QCResult) -> dict[int, str]:
    """Who entered, tested, approved or retested ``result`` or a result linked to it, from the records and
    the audit trail (rule 2: they do not close its OOS investigation). {user id: "entered result #12 (...)"}."""
    family = result_family(result)
    out: dict[int, str] = {}

    def note(user_id, what: str, r: QCResult) -> None:
        if user_id and user_id not in out:
            out[user_id] = f"{what} result #{r.pk} ({r})"

    for r in family:
        role = "retested" if r.retest_of_id else "entered"
        note(r.entered_by_id, role, r)
        note(r.analyst_id, "tested" if not r.retest_of_id else "retested", r)
        note(r.approved_by_id, "approved", r)
    by_pk = {str(r.pk): r for r in family}
    # The trail keeps whoever wrote a result even where the row no longer names them (an approval withdrawn).
    for user_id, object_id in AuditEntry.objects.filter(
            object_type="qc.qcresult", object_id__in=list(by_pk), user_id__isnull=False
    ).values_list("user_id", "object_id").distinct():
        note(user_id, "entered or changed", by_pk[object_id])
    return out


def lot_investigations(lot: CMLot, *, open_only: bool = False):
    result_ids = list(QCResult.objects.filter(lot=lot).values_list("id", flat=True))
    return investigations_on([(CMLot, [lot.pk]), (QCResult, result_ids)], open_only=open_only)


def investigations_by_lot(results: dict[int, list[QCResult]]) -> dict[int, list]:
    """``lot_investigations`` for a page of lots in one query, given their results (``results_by_lot_instances``)."""
    from django.contrib.contenttypes.models import ContentType

    lot_of_result = {str(r.pk): lot_pk for lot_pk, rows in results.items() for r in rows}
    lot_type = ContentType.objects.get_for_model(CMLot)
    out: dict[int, list] = {pk: [] for pk in results}
    for inv in investigations_on([(CMLot, list(results)), (QCResult, list(lot_of_result))]):
        lot_pk = int(inv.object_id) if inv.content_type_id == lot_type.pk else lot_of_result.get(inv.object_id)
        if lot_pk in out:
            out[lot_pk].append(inv)
    return out


def genealogy_deviations(lot: CMLot, *, open_only: bool = True):
    """Deviations raised against a record the lot was made from (its harvests, freeze-drying and packaging
    runs), in one query: the lot's release waits for them as for one raised against the lot itself."""
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import CharField
    from django.db.models.functions import Cast

    from batches.models import Harvest, HarvestContribution, LyophilisationRun, PackagingRun
    from cmlims.investigations.models import Investigation, Kind, Status

    def ids(qs, column):
        return qs.annotate(key=Cast(column, CharField())).values("key")

    condition = Q()
    for model, qs, column in ((Harvest, HarvestContribution.objects.filter(lot=lot), "harvest_id"),
                              (LyophilisationRun, LyophilisationRun.objects.filter(lot=lot), "pk"),
                              (PackagingRun, PackagingRun.objects.filter(lot=lot), "pk")):
        condition |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=ids(qs, column))
    found = Investigation.objects.filter(condition, kind=Kind.DEVIATION)
    return (found.filter(status=Status.OPEN) if open_only else found).order_by("opened_at", "id")


def investigation_conditions(lot: CMLot) -> list[Condition]:
    """Every open investigation on the lot or its results (``investigation_open``) and every open deviation on
    the lot or a record it was made from (``deviation_open``) blocks sign-off as release (rule 3, 211.192)."""
    from cmlims.investigations.models import Kind

    out = [{"code": "deviation_open" if inv.kind == Kind.DEVIATION else "investigation_open",
            "detail": f"{inv.number} ({inv.title}) is open"} for inv in lot_investigations(lot, open_only=True)]
    return out + [{"code": "deviation_open", "detail": f"{inv.number} ({inv.title}) on {inv.subject_repr} is open"}
                  for inv in genealogy_deviations(lot)]


def donor_conditions(lot: CMLot) -> list[Condition]:
    from batches.selectors import lot_donors

    return [{"code": "donor_not_eligible",
             "detail": f"donor {donor.code}: eligibility {donor.eligibility_status}, consent {donor.consent_status}"}
            for donor in lot_donors(lot) if not donor.is_eligible_with_consent]


def related_lot_numbers(lot: CMLot) -> list[str]:
    """Other lots made from the same donors: where an OOS investigation must look too (211.192)."""
    from batches.selectors import lot_donors

    donors = lot_donors(lot)
    return list(CMLot.objects.filter(contributions__harvest__culture__bank__source__in=donors)
                .exclude(pk=lot.pk).distinct().order_by("lot_number").values_list("lot_number", flat=True))


def related_lot_numbers_bulk(lots: list[CMLot]) -> dict[int, list[str]]:
    """``related_lot_numbers`` of many lots in two queries: {lot id: other lots made from the same donors}."""
    if not lots:
        return {}
    donor = "harvest__culture__bank__source_id"
    donors_of: dict[int, set[int]] = defaultdict(set)
    for lot_id, source_id in (HarvestContribution.objects.filter(lot__in=lots).values_list("lot_id", donor)
                              .distinct()):
        donors_of[lot_id].add(source_id)
    lots_of: dict[int, set[tuple[str, int]]] = defaultdict(set)
    sources = set().union(*donors_of.values())
    for source_id, lot_id, number in (HarvestContribution.objects.filter(**{f"{donor}__in": sources})
                                      .values_list(donor, "lot_id", "lot__lot_number").distinct()):
        lots_of[source_id].add((number, lot_id))
    return {lot.pk: sorted({number for source in donors_of[lot.pk] for number, other in lots_of[source]
                            if other != lot.pk})
            for lot in lots}


def four_eyes_conditions(lot: CMLot, signer) -> list[Condition]:
    """Rule 2: the signer performed or verified no step of the lot and entered none of its results."""
    from batches.selectors import lot_participant_ids

    out: list[Condition] = []
    if signer.pk in set(lot_participant_ids(lot)):
        out.append({"code": "signer_participated",
                    "detail": f"{signer.get_username()} performed or verified a manufacturing step of this lot"})
    entered = QCResult.objects.filter(lot=lot).filter(Q(entered_by=signer) | Q(analyst=signer)).exists()
    if entered:
        out.append({"code": "signer_entered_results",
                    "detail": f"{signer.get_username()} entered or performed a QC result of this lot"})
    return out


def release_conditions(lot: CMLot, signer) -> list[Condition]:
    """Rule 3 (results, investigations, donors, label reconciliation) and rule 2 for the release signer; state
    and hold come from the lifecycle's own checks."""
    return (expiry_conditions(lot) + results_conditions(lot, need_pass=True) + investigation_conditions(lot)
            + donor_conditions(lot) + label_conditions(lot) + four_eyes_conditions(lot, signer))


def label_conditions(lot: CMLot) -> list[Condition]:
    """Every label issued for the lot is used, destroyed or returned (211.125/211.130): else
    ``labels_unreconciled``."""
    from batches.documents import lot_label_conditions_for_release

    return lot_label_conditions_for_release(lot)


def expiry_conditions(lot: CMLot) -> list[Condition]:
    """A lot past its expiry date (the site's date) is never released, even before the periodic task runs."""
    if lot.expiry is not None and lot.expiry < timezone.localdate():
        return [{"code": "expired", "detail": f"lot {lot.lot_number} expired on {lot.expiry.isoformat()}"}]
    return []


# --- the lot's audit trail ---------------------------------------------------------------------------------


def lot_audit_objects(lot: CMLot) -> Q:
    """Audit entries about the lot: the lot and what batches registers under it (cmlims.timeline), plus its
    results, their investigations, the lot's reviews and every signature on the lot or its results.
    A page that asks several questions computes this once and passes it as ``objects``."""
    from collections import defaultdict

    from django.contrib.contenttypes.models import ContentType

    from cmlims.esign.models import Signature
    from cmlims.timeline import timeline_for, timeline_registered

    objects: dict[str, set[str]] = defaultdict(set)
    if timeline_registered(lot):
        for object_type, ids in timeline_for(lot).objects.items():
            objects[object_type].update(ids)
    objects["batches.cmlot"].add(str(lot.pk))
    result_ids = [str(i) for i in QCResult.objects.filter(lot=lot).values_list("pk", flat=True)]
    objects["qc.qcresult"].update(result_ids)
    objects["qc.lotauditreview"].update(str(i) for i in LotAuditReview.objects.filter(lot=lot)
                                        .values_list("pk", flat=True))
    objects["investigations.investigation"].update(str(i) for i in lot_investigations(lot)
                                                   .values_list("pk", flat=True))
    objects["esign.signature"].update(str(i) for i in Signature.objects.filter(
        Q(content_type=ContentType.objects.get_for_model(CMLot), object_id=str(lot.pk))
        | Q(content_type=ContentType.objects.get_for_model(QCResult), object_id__in=result_ids)
    ).values_list("pk", flat=True))
    condition = Q(pk__in=[])
    for object_type, ids in objects.items():
        if ids:
            condition |= Q(object_type=object_type, object_id__in=sorted(ids))
    return condition


def last_audit_review(lot: CMLot) -> LotAuditReview | None:
    return LotAuditReview.objects.filter(lot=lot).order_by("-reviewed_through").first()


def lot_audit_entries(lot: CMLot, *, after: int = 0, through: int | None = None, objects: Q | None = None):
    qs = AuditEntry.objects.filter(objects if objects is not None else lot_audit_objects(lot), sequence__gt=after)
    if through is not None:
        qs = qs.filter(sequence__lte=through)
    return qs.order_by("sequence")


def lot_review_latest_sequence(lot: CMLot, objects: Q | None = None) -> int:
    """The newest audit entry of the lot a review must cover. Reviews themselves are not reviewed, and a
    failed signature attempt (shown in the review by exception) does not make the signer's review stale: a
    mistyped password must not send the officer back to re-review."""
    from cmlims.audit import Action

    latest = (lot_audit_entries(lot, objects=objects).exclude(object_type="qc.lotauditreview")
              .exclude(action=Action.SIGNATURE_FAILED)
              .order_by("-sequence").values_list("sequence", flat=True).first())
    return latest or 0


def audit_review_conditions(lot: CMLot, signer, through: int | None, *, required: bool, objects: Q | None = None):
    """(conditions, review to sign): the signer confirms now (``through``) or by an earlier review of theirs
    that still covers every entry of the lot."""
    from cmlims.audit import chain_head

    latest = lot_review_latest_sequence(lot, objects)
    if through is not None:
        if through > chain_head().sequence:
            return [{"code": "audit_review_invalid", "detail": f"#{through} is beyond the newest audit entry"}], None
        if through < latest:
            return [{"code": "audit_review_stale",
                     "detail": f"the lot's audit trail has entries after #{through} (newest #{latest}); "
                               "review them before signing"}], None
        return [], None
    review = LotAuditReview.objects.filter(lot=lot, reviewer=signer).order_by("-reviewed_through").first()
    if review is not None and review.reviewed_through >= latest:
        return [], review
    if not required:
        return [], None
    if review is None:
        return [{"code": "audit_review_missing",
                 "detail": "the audit trail review is not confirmed: review the lot's audit trail "
                           f"(through #{latest}) and confirm it"}], None
    return [{"code": "audit_review_stale",
             "detail": f"the audit trail changed after your review through #{review.reviewed_through} "
                       f"(newest #{latest}); review the new entries"}], None


def lot_audit_since_review(lot: CMLot, objects: Q | None = None) -> dict:
    """What the officer must review before signing: the entries since the last review."""
    review = last_audit_review(lot)
    after = review.reviewed_through if review else 0
    entries = list(lot_audit_entries(lot, after=after, objects=objects))
    return {
        "previous_review": review,
        "after": after,
        "entries": entries,
        "latest_sequence": entries[-1].sequence if entries else after,
    }


def lot_signoff_signatures(lot: CMLot):
    from cmlims.esign.models import Meaning

    return signatures_of(lot, meanings=[Meaning.RELEASED, Meaning.REJECTED, Meaning.RECALLED])
