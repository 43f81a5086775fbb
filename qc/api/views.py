"""QC API: thin views that parse input, call one service or selector, and render."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from batches.models import CMLot
from batches.selectors import lot_get
from cmlims import roles
from cmlims.api.parsing import SignatureInput, csv_upload_check, request_parse
from cmlims.api.permissions import RoleReaders, RoleWriters, WorkingRoleReaders
from cmlims.api.schema import signing_request
from cmlims.audit import to_jsonable
from cmlims.esign.models import Meaning
from cmlims.esign.services import signature_manifest
from cmlims.exceptions import field_error
from cmlims.investigations.api import investigation_body
from qc import selectors
from qc.api.serializers import (
    AuditReviewBody,
    AuditReviewInput,
    HoldReasonInput,
    ImportBody,
    ImportInput,
    LotHoldBody,
    LotResultsBody,
    ResultBody,
    ResultInput,
    SignOffBody,
    SignOffChecklistBody,
    SignOffInput,
    SpecificationBody,
    SpecificationListBody,
    SpecificationListQuery,
    result_body,
    spec_item_body,
)
from qc.models import QCResult, Specification
from qc.services.hold import lot_hold, lot_unhold
from qc.services.imports import results_import
from qc.services.results import ENTRY_ROLES, result_approve, result_enter, result_get, result_invalidate
from qc.services.signoff import MEANINGS, lot_audit_review_confirm, lot_for_signoff, lot_sign_off
from qc.services.specs import specification_approve
from qc.signed_content import lot_signature_status, result_signature_status


def _linked_result(result_id: int | None, field: str) -> QCResult | None:
    if result_id is None:
        return None
    found = selectors.result_by_id(result_id)
    if found is None:
        raise field_error(field, f"result {result_id} does not exist")
    return found


class ResultCreateView(APIView):
    """Record one QC result (JSON, or multipart with a raw-data ``attachment``)."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = ENTRY_ROLES

    @extend_schema(request=ResultInput, responses={201: ResultBody})
    def post(self, request):
        d = request_parse(ResultInput, request)
        lot = selectors.lot_by_number(d["lot_number"])
        if lot is None:
            raise field_error("lot_number", f"no lot '{d['lot_number']}'")
        analyst = request.user
        if d["analyst"]:
            analyst = selectors.user_by_username(d["analyst"])
            if analyst is None:
                raise field_error("analyst", f"no user '{d['analyst']}'")
        result = result_enter(
            lot=lot, actor=request.user, test=d["test"], value=d["value"], unit=d["unit"], analyst=analyst,
            tested_at=d["tested_at"], instrument=d["instrument"], attachment=d.get("attachment"),
            retest_of=_linked_result(d.get("retest_of"), "retest_of"),
            supersedes=_linked_result(d.get("supersedes"), "supersedes"), correction_reason=d["reason"],
        )
        return Response(result_body(result_get(result.pk)), status=status.HTTP_201_CREATED)


def result_detail_body(pk: int) -> dict:
    result = selectors.result_detail(pk)
    approval_status = result_signature_status(result, result.approval) if result.approval_id else None
    return result_body(result, approval_status=approval_status)


class ResultDetailView(APIView):
    permission_classes = [IsAuthenticated, RoleReaders]  # results are read as their lot is, integration included

    @extend_schema(responses={200: ResultBody})
    def get(self, request, pk: int):
        return Response(result_detail_body(pk))


class ApprovalView(APIView):
    """Sign one record into force with the caller's electronic signature: the record found (404), the signature
    parsed (400), the service signs (the meaning, if sent, checked by cmlims.esign); answers the record."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    record_get = None  # pk -> record, NotFound if none
    approve = None  # service(<record_kwarg>=record, actor=, username=, password=, reason=, meaning=)
    record_kwarg = ""
    body = None  # pk -> the record's API body
    meaning = ""  # what the service signs with (the schema states it)
    response_body: type = ResultBody  # what ``body`` answers, for the schema

    def get_serializer_class(self):  # for the OpenAPI schema
        return signing_request(SignatureInput, self.meaning)

    def response_schema(self, method: str) -> dict:  # for the OpenAPI schema
        return {200: self.response_body}

    def post(self, request, pk: int):
        view = type(self)
        record = view.record_get(pk)
        d = request_parse(SignatureInput, request)
        view.approve(**{self.record_kwarg: record}, actor=request.user, username=d["username"],
                     password=d["password"], reason=d["reason"], meaning=d.get("meaning"))
        return Response(view.body(pk))


class ResultApproveView(ApprovalView):
    """Approve a result with an electronic signature ("result approved")."""

    record_get, approve, record_kwarg, body = result_get, result_approve, "result", result_detail_body
    meaning = Meaning.RESULT_APPROVED


class ResultInvalidateView(ApprovalView):
    """Invalidate a result with an electronic signature ("result invalidated") and a reason: it stays visible,
    marked invalidated, and no longer counts for the lot."""

    record_get, approve, record_kwarg, body = result_get, result_invalidate, "result", result_detail_body
    meaning = Meaning.RESULT_INVALIDATED


class ResultImportView(APIView):
    """All-or-nothing CSV import: 201 {"imported": n, "original": the stored file as received, with its SHA-256},
    or 400 with every problem in ``rows``."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = ENTRY_ROLES

    @extend_schema(request={"multipart/form-data": ImportInput}, responses={201: ImportBody})
    def post(self, request):
        upload = request_parse(ImportInput, request)["file"]
        csv_upload_check(upload, export_hint="export the results as CSV")
        original = results_import(data=upload.read(), actor=request.user, file_name=upload.name)
        return Response({"imported": original.result_count, "original": {
            "id": original.pk, "file_name": original.file_name, "stored_as": original.original.name,
            "sha256": original.sha256, "size_bytes": original.size_bytes,
        }}, status=status.HTTP_201_CREATED)


class LotResultsView(APIView):
    """The lot's specification (version in force when pooled) and every result, the counting ones marked."""

    permission_classes = [IsAuthenticated, RoleReaders]  # as the lot itself: integration reads lots and results

    @extend_schema(responses={200: LotResultsBody})
    def get(self, request, lot_number: str):
        lot = lot_get(lot_number)
        specification = selectors.lot_specification(lot)
        results = list(selectors.lot_results(lot))
        counting = {r.pk for r in selectors.counting_results(lot, results).values()}
        return Response({
            "lot_number": lot.lot_number,
            "specification": None if specification is None else {
                "id": specification.pk, "title": specification.title, "version": specification.version,
                "effective_from": to_jsonable(specification.effective_from),
                "items": [spec_item_body(i) for i in selectors.spec_items(specification)],
            },
            "results": [result_body(r, counts=r.pk in counting,
                                    approval_status=result_signature_status(r, r.approval) if r.approval_id else None)
                        for r in results],
        })


class LotHoldView(APIView):
    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    hold = True

    @extend_schema(request=HoldReasonInput, responses={200: LotHoldBody})
    def post(self, request, lot_number: str):
        reason = request_parse(HoldReasonInput, request)["reason"]
        service = lot_hold if self.hold else lot_unhold
        lot = service(lot=lot_get(lot_number), actor=request.user, reason=reason)
        return Response({"lot_number": lot.lot_number, "on_hold": lot.on_hold, "hold_reason": lot.hold_reason,
                         "held_at": to_jsonable(lot.held_at)})


def signoff_body(lot: CMLot, actor) -> dict:
    """The sign-off checklist: every unmet release condition for ``actor``, the audit trail since the last
    review, and the signatures on the lot with their "changed after signing" state."""
    from batches.lifecycle import unmet_conditions
    from batches.models import LotStatus

    objects = selectors.lot_audit_objects(lot)
    since = selectors.lot_audit_since_review(lot, objects)
    review_conditions, _ = selectors.audit_review_conditions(lot, actor, None, required=True, objects=objects)
    signatures = []
    for signature in selectors.lot_signoff_signatures(lot):
        signatures.append(signature_manifest(signature, lot_signature_status(lot, signature)))
    return {
        "lot_number": lot.lot_number,
        "status": lot.status,
        "on_hold": lot.on_hold,
        "release_conditions": unmet_conditions(lot, LotStatus.RELEASED, actor) + review_conditions,
        "audit_review": {
            "previous_review": None if since["previous_review"] is None else {
                "reviewer": since["previous_review"].reviewer.get_username(),
                "reviewed_through": since["previous_review"].reviewed_through,
                "reviewed_at": to_jsonable(since["previous_review"].reviewed_at),
            },
            "entries_since": [
                {"sequence": e.sequence, "at": to_jsonable(e.at), "user": e.username, "action": e.action,
                 "object": f"{e.object_type}:{e.object_id}", "repr": e.object_repr, "changes": e.changes,
                 "reason": e.reason}
                for e in since["entries"]
            ],
            "confirm_through": since["latest_sequence"],
        },
        "investigations": [investigation_body(i) for i in selectors.lot_investigations(lot)],
        "signatures": signatures,
    }


class LotSignOffChecklistView(APIView):
    """What the officer sees before signing: conditions, audit trail since the last review, signatures."""

    # The audit trail and signatures are neither lots nor results: the three working roles (DESIGN "Roles").
    permission_classes = [IsAuthenticated, WorkingRoleReaders]

    @extend_schema(responses={200: SignOffChecklistBody})
    def get(self, request, lot_number: str):
        return Response(signoff_body(lot_for_signoff(lot_number), request.user))


class LotSignOffView(APIView):
    """Release, reject or recall with an electronic signature."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    to: str = ""

    def get_serializer_class(self):  # for the OpenAPI schema: this step's meaning and reason rule
        return signing_request(SignOffInput, MEANINGS[self.to])

    @extend_schema(responses={200: SignOffBody})
    def post(self, request, lot_number: str):
        d = request_parse(SignOffInput, request)
        signature = lot_sign_off(
            lot=lot_get(lot_number), to=self.to, actor=request.user, username=d["username"], password=d["password"],
            reason=d["reason"], meaning=d.get("meaning") or None,
            audit_reviewed_through=d.get("audit_reviewed_through"),
        )
        lot = lot_get(lot_number)
        return Response({"lot_number": lot.lot_number, "status": lot.status,
                         "signature": signature_manifest(signature, lot_signature_status(lot, signature))})


class LotAuditReviewView(APIView):
    """Confirm the review of the lot's audit trail up to an entry (Annex 11 §9)."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER,)

    @extend_schema(request=AuditReviewInput, responses={201: AuditReviewBody})
    def post(self, request, lot_number: str):
        reviewed_through = request_parse(AuditReviewInput, request)["reviewed_through"]
        review = lot_audit_review_confirm(lot=lot_get(lot_number), actor=request.user,
                                          reviewed_through=reviewed_through)
        return Response({"lot_number": lot_number, "reviewed_through": review.reviewed_through,
                         "entries_reviewed": review.entries_reviewed, "reviewer": request.user.get_username(),
                         "reviewed_at": to_jsonable(review.reviewed_at)}, status=status.HTTP_201_CREATED)


def specification_body(spec: Specification) -> dict:
    return {
        "id": spec.pk, "product": spec.product.name, "version": spec.version, "title": spec.title,
        "status": spec.status, "effective_from": to_jsonable(spec.effective_from),
        "approval": signature_manifest(spec.approval) if spec.approval_id else None,
        "items": [spec_item_body(i) for i in spec.items.all()],
    }


class SpecificationListView(APIView):
    """Every specification version (newest first per product) with its items and approval signature."""

    permission_classes = [IsAuthenticated, WorkingRoleReaders]  # integration reads lots and results only

    @extend_schema(parameters=[SpecificationListQuery], responses={200: SpecificationListBody})
    def get(self, request):
        product = request_parse(SpecificationListQuery, request, query=True)["product"]
        specs = selectors.specification_list(product_id=product)
        return Response({"results": [specification_body(s) for s in specs]})


class SpecificationApproveView(ApprovalView):
    """Sign a draft into force ("specification approved")."""

    record_get, approve, record_kwarg = selectors.specification_get, specification_approve, "specification"
    meaning = Meaning.SPECIFICATION_APPROVED
    response_body = SpecificationBody

    @staticmethod
    def body(pk: int) -> dict:
        return specification_body(selectors.specification_list().get(pk=pk))
