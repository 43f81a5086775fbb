"""The sign-off review's routine changes come from the pipelines (issue 17 review finding): each pipeline
declares the fields only its writers move; the review keeps no list of its own."""

import pytest

from batches.lifecycle import LOT_PIPELINE, VIAL_PIPELINE
from batches.shipping.lifecycle import SHIPMENT_PIPELINE
from cmlims.audit import Action
from cmlims.models import AuditEntry
from cmlims.pipeline import pipeline_routine_fields
from qc.review import exception_kind


def _changed(object_type: str, **changes) -> AuditEntry:
    return AuditEntry(action=Action.CHANGED, object_type=object_type, object_id="1", reason="",
                      changes={name: list(values) for name, values in changes.items()})


@pytest.mark.req("FEAT-ADMINHOME-REVIEW")
def test_each_pipeline_names_its_model_and_the_fields_it_moves():
    assert {p.object_type: p.routine_fields for p in (LOT_PIPELINE, VIAL_PIPELINE, SHIPMENT_PIPELINE)} == {
        "batches.cmlot": {"status"}, "batches.vial": {"status", "storage_location_id"},
        "shipping.shipment": {"status"}}
    assert pipeline_routine_fields("batches.vial") == {"status", "storage_location_id"}
    assert pipeline_routine_fields("batches.culture") == frozenset()  # no pipeline, nothing routine


@pytest.mark.req("FEAT-ADMINHOME-REVIEW")
def test_the_review_reads_routine_fields_from_the_pipelines():
    # A vial's move to released stock and a shipment's status move are the pipelines' routine work...
    assert exception_kind(_changed("batches.vial", status=("available", "allocated"))) == ""
    assert exception_kind(_changed("batches.vial", storage_location_id=(3, 4))) == ""
    assert exception_kind(_changed("shipping.shipment", status=("draft", "packed"))) == ""
    # ...a storage location changed on a lot, or a status on a model no pipeline moves, is not.
    assert exception_kind(_changed("batches.cmlot", storage_location_id=(3, 4))) == "changed after creation"
    assert exception_kind(_changed("batches.culture", status=("conditioning", "closed"))) == \
        "changed after creation"
    # Together with a field no pipeline moves, the change is shown.
    assert exception_kind(_changed("batches.vial", status=("available", "destroyed"),
                                   destroyed_reason=("broken", "dropped"))) == "changed after creation"

