"""Real records for the API fuzzer: what no schema can say (ids of records that must exist, a GTIN's check digit)
is put into the schema-valid examples, so they reach the services instead of a "no such record" refusal."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from schemathesis.hooks import HookDispatcher, HookScope
from stdnum import ean

from batches.models import CellBank, Culture, Harvest
from cmlims.investigations.deviations import deviation_subject_types
from qc.models import SpecItem
from tests.support.builders import make_world


@dataclass
class FuzzRecords:
    body: dict[str, Any]  # body and query field -> a value naming an existing record
    path: dict[str, Any]  # path parameter -> the same
    ids_by_path: dict[str, int]  # "{id}" of the operations under this path prefix
    location: Any  # a storage location: its id where a field takes an id, its code where it takes a code
    subjects: dict[str, Any]  # deviation subject type -> an existing record's id


def fuzz_records(*, coordinator) -> FuzzRecords:
    """A released lot made through the services (donor, bank, culture, harvest, specification, vials), a
    consignee and a draft shipment: the records the examples name."""
    world = make_world(coordinator=coordinator)
    lot = world.lot(vials=6)
    shipment = world.shipment()
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
              "test": spec_item.test, "parent_bank": None},
        path={"lot_number": lot.lot_number, "code": bank.source.code, "serial": lot.vials.first().serial},
        ids_by_path={"/api/v1/shipments/": shipment.pk, "/api/v1/cultures/": culture.pk,
                     "/api/v1/harvests/": harvest.pk, "/api/v1/cell-banks/": bank.pk,
                     "/api/v1/products/": world.product.pk, "/api/v1/consignees/": world.consignee.pk},
        subjects=subjects, location=world.location,
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


def real_data_hooks(records: FuzzRecords) -> HookDispatcher:
    """Hooks for the schema-valid examples only: record fields, path parameters and deviation subjects name
    the records of ``records``; a GTIN gets its check digit."""
    hooks = HookDispatcher(scope=HookScope.TEST)

    def named(values: dict) -> dict:
        values = {**values, **{key: value for key, value in records.body.items() if key in values}}
        if "storage_location" in values:
            location = records.location
            values["storage_location"] = location.pk if isinstance(values["storage_location"], int) else location.code
        dated = [name for name in values if name.endswith(("_at", "_on", "_date"))]
        for name in dated:
            values[name] = not_in_future(values[name])
        if dated and not (isinstance(values.get("reason"), str) and values["reason"].strip()):
            values["reason"] = "fuzzing: recorded late"  # a step dated over a day back needs one
        if "gtin" in values:
            values["gtin"] = with_check_digit(values["gtin"])
        if values.get("subject_type") in records.subjects and "subject_id" in values:
            values["subject_id"] = records.subjects[values["subject_type"]]
        if isinstance(values.get("contributions"), list):
            # the one harvest joins a lot once
            values["contributions"] = [named(item) if isinstance(item, dict) else item
                                       for item in values["contributions"][:1]]
        return values

    def map_body(context, body):
        return named(body) if isinstance(body, dict) else body

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
