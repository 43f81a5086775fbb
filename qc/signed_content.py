"""What each QC signature covers: versioned lists of signed fields, built the same way at signing time and
afterwards, so a change to a signed field shows as "changed after signing" and a change to any other
field does not. Bump a version when its field list changes; old signatures keep being checked against
the builder of their own version."""

from __future__ import annotations

from typing import Any

from cmlims.audit import to_jsonable
from cmlims.esign.models import Signature
from cmlims.esign.services import SignatureStatus, signature_status

LOT_SIGNOFF_V1 = "lot-signoff/1"
RESULT_APPROVAL_V1 = "qc-result/1"
SPECIFICATION_V1 = "specification/1"

# The lot's own signed fields: identity, quantities, processing outcome, expiry. Status, hold flag and reason,
# timestamps of status changes are NOT signed: they change because of the signature or around it.
LOT_SIGNED_FIELDS = (
    "lot_number", "product_id", "pooled_at", "volume_in_ml", "filter_pore_size_um", "filter_lot",
    "integrity_test_passed", "volume_filtered_ml", "concentration_cutoff_kda", "concentration_factor",
    "volume_out_ml", "yield_percent", "expiry", "voided_at",
)
RESULT_SIGNED_FIELDS = (
    "id", "lot_id", "spec_item_id", "value_entered", "unit_entered", "value", "qualitative_value", "passed",
    "analyst_id", "instrument", "tested_at", "attachment_sha256", "status", "retest_of_id", "supersedes_id",
)


def result_fields(result) -> dict:
    return {name: to_jsonable(getattr(result, name)) for name in RESULT_SIGNED_FIELDS}


def result_content(result) -> dict:
    item = result.spec_item
    return {
        "result": result_fields(result),
        "spec_item": {"id": item.pk, "test": item.test, "unit": item.unit, "criterion": item.criterion},
    }


def specification_content(specification) -> dict:
    items = [
        {name: to_jsonable(getattr(item, name)) for name in (
            "id", "order", "test", "method", "unit", "limit_kind", "lower", "upper", "lower_inclusive",
            "upper_inclusive", "allowed_values", "passing_values", "mandatory", "demo_limit")}
        for item in specification.items.order_by("order", "id")
    ]
    return {"specification": {"id": specification.pk, "product_id": specification.product_id,
                              "version": specification.version, "title": specification.title},
            "items": items}


def lot_content(lot, review, *, results=None, investigations=None) -> dict:
    """Lot data, every result (with its approval), the investigations, and the audit-review confirmation.
    ``results`` / ``investigations`` may be given preloaded (``lot_signature_statuses``)."""
    from qc.selectors import lot_investigations, lot_results, lot_specification

    specification = lot_specification(lot)
    results_out = []
    for result in (results if results is not None else lot_results(lot)):
        body = result_fields(result)
        body["test"] = result.spec_item.test
        body["approved_by_id"] = result.approved_by_id
        body["approval_id"] = result.approval_id
        results_out.append(body)
    investigations_out = [
        {"id": inv.pk, "kind": inv.kind, "status": inv.status, "subject": f"{inv.content_type_id}:{inv.object_id}",
         "root_cause": inv.root_cause, "related_lots_checked": inv.related_lots_checked, "conclusion": inv.conclusion}
        for inv in (investigations if investigations is not None else lot_investigations(lot))
    ]
    content = {f"lot.{name}": to_jsonable(getattr(lot, name)) for name in LOT_SIGNED_FIELDS}
    content["lot.specification"] = (
        {"id": specification.pk, "version": specification.version} if specification else None
    )
    content["results"] = results_out
    content["investigations"] = investigations_out
    content["audit_review"] = (
        {"id": review.pk, "reviewer_id": review.reviewer_id, "reviewed_from": review.reviewed_from,
         "reviewed_through": review.reviewed_through, "entries_reviewed": review.entries_reviewed}
        if review else None
    )
    return content


def lot_signature_status(lot, signature: Signature) -> SignatureStatus:
    """Rebuild the signed content of ``signature`` from the lot as it is now and compare."""
    from qc.models import LotAuditReview

    review_id = (signature.content.get("audit_review") or {}).get("id")
    review = LotAuditReview.objects.filter(pk=review_id).first() if review_id else None
    return signature_status(signature, lot_content(lot, review))


def lot_signature_statuses(pairs: list[tuple[Any, Signature]]) -> list[SignatureStatus]:
    """``lot_signature_status`` for a page of (lot, signature) pairs in a constant number of queries: results,
    investigations, specifications and reviews are each read once for the whole page."""
    from qc.models import LotAuditReview
    from qc.selectors import investigations_by_lot, preload_lot_specifications, results_by_lot

    lots = list({lot.pk: lot for lot, _ in pairs}.values())
    preload_lot_specifications(lots)
    results = results_by_lot([lot.pk for lot in lots])
    investigations = investigations_by_lot(results)
    review_ids = [(sig.content.get("audit_review") or {}).get("id") for _, sig in pairs]
    reviews = LotAuditReview.objects.in_bulk([i for i in review_ids if i])
    return [
        signature_status(signature, lot_content(lot, reviews.get(review_id), results=results[lot.pk],
                                                investigations=investigations[lot.pk]))
        for (lot, signature), review_id in zip(pairs, review_ids, strict=True)
    ]


def result_signature_status(result, signature: Signature) -> SignatureStatus:
    return signature_status(signature, result_content(result))
