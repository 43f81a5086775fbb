"""Real records for the API fuzzer: what no schema can say (ids of records that must exist, a GTIN's check digit)
is put into the schema-valid examples, so they reach the services instead of a "no such record" refusal."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from schemathesis.hooks import HookDispatcher, HookScope
from stdnum import ean

from batches.documents.labels import lot_labels_request
from batches.models import CellBank, Culture, Harvest, LotStatus
from batches.services.lots import harvest_volume_taken_ml
from batches.shipping.documents import SHIPPING_LABEL, shipment_document_request
from batches.shipping.services import shipment_allocate_count
from cmlims.audit import chain_head
from cmlims.documents.services import document_job_run
from cmlims.investigations.deviations import deviation_subject_types
from qc.models import QCResult, SpecItem
from qc.selectors import lot_review_latest_sequence
from qc.services.imports import COLUMNS
from tests.support.builders import PASSWORD, make_printer, make_world

SHIPPING_LABELS_ISSUED = 10  # copies of the draft shipment's shipping label, for the dispositions to name


@dataclass
class FuzzRecords:
    body: dict[str, Any]  # body and query field -> a value naming an existing record
    path: dict[str, Any]  # path parameter -> the same
    ids_by_path: dict[str, int]  # "{id}" of the operations under this path prefix
    location: Any  # a storage location: its id where a field takes an id, its code where it takes a code
    subjects: dict[str, Any]  # deviation subject type -> an existing record's id
    lot: Any = None  # the released lot (its bulk volume bounds a dryer load; its trail a review)
    harvest: Any = None  # the harvest pooled into it (a new pool is dated after it, within the hold limit)
    result: Any = None  # a result of a lot still open for results (an import names its lot, test, value, unit)
    analyst: str = ""  # a lab staff user name (a result's analyst)
    labels: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (template, kind) -> items issued


def fuzz_records(*, coordinator) -> FuzzRecords:
    """A released lot made through the services (donor, bank, culture, harvest, specification, vials), a
    consignee and a draft shipment: the records the examples name."""
    world = make_world(coordinator=coordinator)
    lot = world.lot(vials=6)
    open_lot = world.lot(vials=2, status=LotStatus.QC_COMPLETE)  # results are still recorded on it
    shipment = world.shipment()
    printer = make_printer(world.lab, address="127.0.0.1:9")  # never reached: no example's job runs
    # Labels issued (jobs run here, as the worker would): the vials' final labels and the shipping label.
    document_job_run(job_id=lot_labels_request(lot=lot, actor=coordinator, template="vial", kind="final",
                                               output_format="zpl").pk)
    shipment_allocate_count(shipment=shipment, count=1, actor=coordinator)
    document_job_run(job_id=shipment_document_request(shipment=shipment, kind=SHIPPING_LABEL, actor=coordinator,
                                                      output_format="zpl", copies=SHIPPING_LABELS_ISSUED).pk)
    harvest = Harvest.objects.filter(culture__product=world.product).order_by("pk").first()
    culture = Culture.objects.filter(product=world.product).order_by("pk").first()
    bank = CellBank.objects.order_by("pk").first()
    spec_item = SpecItem.objects.filter(specification__product=world.product).order_by("pk").first()
    subjects = {}
    for subject_type, model in deviation_subject_types().items():
        record = model._default_manager.order_by("pk").first()
        if record is not None:
            subjects[subject_type] = str(record.pk)
    return FuzzRecords(
        body={"product": world.product.pk, "bank": bank.pk, "source": bank.source_id, "culture": culture.pk,
              "consignee": world.consignee.pk, "harvest": harvest.pk, "lot_number": lot.lot_number,
              "lot": lot.lot_number, "test": spec_item.test, "parent_bank": None, "printer": printer.pk},
        path={"lot_number": lot.lot_number, "code": bank.source.code, "serial": lot.vials.first().serial},
        ids_by_path={"/api/v1/shipments/": shipment.pk, "/api/v1/cultures/": culture.pk,
                     "/api/v1/harvests/": harvest.pk, "/api/v1/cell-banks/": bank.pk,
                     "/api/v1/products/": world.product.pk, "/api/v1/consignees/": world.consignee.pk},
        subjects=subjects, location=world.location, lot=lot, harvest=harvest, analyst=world.lab.get_username(),
        result=QCResult.objects.filter(lot=open_lot, spec_item__test=spec_item.test).order_by("pk").first(),
        labels={("vial", "final"): list(lot.vials.order_by("sequence").values_list("serial", flat=True))},
    )


def with_check_digit(gtin: Any) -> Any:
    """A GTIN of the right length with its check digit corrected (GS1 §7.9); anything else as it came."""
    if isinstance(gtin, str) and gtin.isdigit() and len(gtin) in (8, 12, 13, 14):
        return gtin[:-1] + ean.calc_check_digit(gtin[:-1])
    return gtin


def not_in_future(value: Any) -> Any:
    """A date or time of a step that happened: one the generator put in the future moves to a year ago."""
    if not isinstance(value, str):
        return value
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    now = timezone.now()
    if parsed.tzinfo is not None and parsed > now:
        return (now - dt.timedelta(days=365)).isoformat()
    if parsed.tzinfo is None and len(value) == 10 and parsed.date() > timezone.localdate():
        return (timezone.localdate() - dt.timedelta(days=365)).isoformat()
    return value


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    except InvalidOperation:
        return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def ordered_limits(values: dict) -> dict:
    """A ``…_min…`` and its ``…_max…`` in order (min ≤ max), swapped if the generator gave them the other way."""
    for low_name in [name for name in values if "_min_" in name or name.endswith("_min")]:
        high_name = low_name.replace("_min", "_max")
        low, high = _decimal(values.get(low_name)), _decimal(values.get(high_name))
        if low is not None and high is not None and low > high:
            values[low_name], values[high_name] = values[high_name], values[low_name]
    return values


def within_bulk(values: dict, bulk_ml: Decimal) -> dict:
    """A dryer load the lot's bulk fills: vials × fill volume at most the bulk."""
    vials, fill = values.get("vials_loaded"), _decimal(values.get("fill_volume_ml"))
    if isinstance(vials, int) and not isinstance(vials, bool) and vials >= 1 and fill and fill > 0 \
            and vials * fill > bulk_ml:
        values["vials_loaded"] = max(1, int(bulk_ml // fill))
        if values["vials_loaded"] * fill > bulk_ml:
            values["fill_volume_ml"] = str((bulk_ml / values["vials_loaded"]).quantize(Decimal("0.001"),
                                                                                        rounding="ROUND_DOWN"))
    return values


def results_csv(result) -> bytes:
    """An import file of one result row as the lab's export writes it: the lot, test, value and unit of
    ``result`` (a value its specification reads), tested an hour ago."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerow({"lot_number": result.lot.lot_number, "test": result.spec_item.test,
                     "value": result.value_entered, "unit": result.unit_entered,
                     "analyst": result.analyst.get_username(), "instrument": "",
                     "tested_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(), "reason": ""})
    return out.getvalue().encode()


def real_data_hooks(records: FuzzRecords, *, signer: str = "") -> HookDispatcher:
    """Hooks for the schema-valid examples only: record fields, path parameters and deviation subjects name
    the records of ``records``; a GTIN gets its check digit; rules across fields (min ≤ max, vials on hand ≤
    vials frozen, a load within the bulk) and records (a pool after its harvest and within its hold limit
    and volume, labels that were issued, a review up to an entry that exists) hold; a signature is
    ``signer``'s own (user name and password)."""
    hooks = HookDispatcher(scope=HookScope.TEST)

    def named(values: dict, path: str = "") -> dict:
        values = {**values, **{key: value for key, value in records.body.items() if key in values}}
        if "storage_location" in values and values["storage_location"] is not None:
            location = records.location
            values["storage_location"] = location.pk if isinstance(values["storage_location"], int) else location.code
        ordered_limits(values)
        if isinstance(values.get("vials_on_hand"), int) and isinstance(values.get("vials_frozen"), int):
            values["vials_on_hand"] = min(values["vials_on_hand"], values["vials_frozen"])
        if records.lot is not None and records.lot.volume_out_ml:
            within_bulk(values, records.lot.volume_out_ml)
        if signer and "password" in values:
            values["username"], values["password"] = signer, PASSWORD
        if "analyst" in values:
            values["analyst"] = records.analyst
        for name in ("retest_of", "supersedes"):  # which results may be retested or corrected: not generated
            values.pop(name, None)
        for name in ("reviewed_through", "audit_reviewed_through"):
            if isinstance(values.get(name), int) and records.lot is not None:
                latest = lot_review_latest_sequence(records.lot)
                values[name] = min(max(values[name], latest), chain_head().sequence)
        if path.startswith("/api/v1/lots/") and path.endswith("/labels/dispositions/") and records.labels:
            issued = records.labels.get((values.get("template"), values.get("kind")))
            if issued is None:
                (values["template"], values["kind"]), issued = next(iter(records.labels.items()))
            if isinstance(values.get("labels"), list):
                values["labels"] = issued[:max(1, min(len(values["labels"]), len(issued)))]
        if path.startswith("/api/v1/shipments/") and path.endswith("/labels/dispositions/") \
                and isinstance(values.get("count"), int):
            values["count"] = min(values["count"], SHIPPING_LABELS_ISSUED)
        # labels printed before (see fuzz_records) are reprints, which need a reason
        if path.startswith("/api/v1/shipments/") and path.endswith("/labels/") \
                and not _text(values.get("reprint_reason")):
            values["reprint_reason"] = "fuzzing: the label was printed before"
        if path.startswith("/api/v1/lots/") and path.endswith("/labels/") and not _text(values.get("reason")) \
                and (values.get("template"), values.get("kind")) in records.labels:
            values["reason"] = "fuzzing: the labels were printed before"
        if path == "/api/v1/qc/results/import/" and "file" in values and records.result is not None:
            values["file"] = results_csv(records.result)
        dated = [name for name in values if name.endswith(("_at", "_on", "_date"))]
        for name in dated:
            values[name] = not_in_future(values[name])
            if path.startswith("/api/v1/shipments/"):
                # a shipment's step is not before its previous one, made when the world was: "now" (the default)
                values.pop(name)
        if dated and not _text(values.get("reason")):
            values["reason"] = "fuzzing: recorded late"  # a step dated over a day back needs one
        if "gtin" in values:
            values["gtin"] = with_check_digit(values["gtin"])
        if values.get("subject_type") in records.subjects and "subject_id" in values:
            values["subject_id"] = records.subjects[values["subject_type"]]
        if isinstance(values.get("contributions"), list):
            # the one harvest joins a lot once, after it was collected and within the product's hold limit,
            # with what is left of it
            values["contributions"] = [named(item, path) if isinstance(item, dict) else item
                                       for item in values["contributions"][:1]]
            if records.harvest is not None:
                values["pooled_at"] = (records.harvest.conditioning_ended_at + dt.timedelta(hours=1)).isoformat()
                values["reason"] = "fuzzing: recorded late"
        if records.harvest is not None and "harvest" in values and _decimal(values.get("volume_ml")):
            left = records.harvest.volume_ml - harvest_volume_taken_ml(records.harvest)
            values["volume_ml"] = str(min(_decimal(values["volume_ml"]), left))
        return values

    def map_body(context, body):
        return named(body, context.operation.path) if isinstance(body, dict) else body

    def map_query(context, query):
        return named(query) if isinstance(query, dict) else query

    def map_path_parameters(context, path_parameters):
        if not path_parameters:
            return path_parameters
        values = {**path_parameters,
                  **{key: value for key, value in records.path.items() if key in path_parameters}}
        if "id" in values:
            for prefix, pk in records.ids_by_path.items():
                if context.operation.path.startswith(prefix):
                    values["id"] = pk
        return values

    for hook in (map_body, map_query, map_path_parameters):
        hooks.register_hook_with_name(hook, hook.__name__)
    return hooks
