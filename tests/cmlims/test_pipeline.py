"""The generic status pipeline (cmlims.pipeline) on a small aggregate of its own: no database needed."""

from dataclasses import dataclass

import pytest

from cmlims.exceptions import Conflict, InvalidInput
from cmlims.pipeline import Pipeline, Rule


@dataclass
class Door:
    status: str
    locked: bool = False

    def __str__(self):
        return "door 1"


def _door_pipeline() -> Pipeline:
    return Pipeline(
        "door",
        rules=[
            Rule("open", frozenset({"closed"}), frozenset({"porter"}), description="swing it open"),
            Rule("closed", frozenset({"open", "ajar"}), frozenset({"porter"}), refusal_code="stuck"),
            Rule("bricked", frozenset({"closed"}), signed=True),
            Rule("rusted", frozenset({"closed", "open"}), automatic=True),
        ],
        before_state=lambda door, rule: [{"code": "locked", "detail": "door 1 is locked"}] if door.locked else [],
        activities={"painting": frozenset({"closed"})},
    )


def test_every_unmet_condition_is_listed_in_order_in_one_refusal():
    pipeline = _door_pipeline()
    pipeline.register_guard("open", lambda door, actor: [{"code": "no_key", "detail": f"{actor} has no key"}])
    pipeline.register_guard("open", lambda door, actor: [{"code": "night", "detail": "it is night"}])
    door = Door("open", locked=True)
    conditions = pipeline.unmet_conditions(door, "open", "ann")
    assert [c["code"] for c in conditions] == ["locked", "wrong_status", "no_key", "night"]
    assert conditions[1]["detail"] == "door 1 is open; open can only be reached from closed"
    with pytest.raises(Conflict) as refused:
        pipeline.check(door, "open", "ann", extra=[{"code": "step", "detail": "the step's own"}])
    assert refused.value.code == "transition_not_allowed"
    assert [c["code"] for c in refused.value.extra["conditions"]] == ["locked", "wrong_status", "no_key", "night",
                                                                      "step"]
    assert refused.value.message.startswith("door 1 cannot move to open: door 1 is locked; door 1 is open")
    assert pipeline.unmet_conditions(Door("closed"), "closed", "ann")[0]["code"] == "wrong_status"
    with pytest.raises(Conflict) as refused:
        pipeline.check(Door("closed"), "closed", "ann")
    assert refused.value.code == "stuck"  # the rule's own refusal code
    pipeline.check(Door("ajar"), "closed", "ann")  # nothing unmet: no refusal


def test_guards_register_once_and_only_for_known_targets():
    pipeline = _door_pipeline()

    def guard(door, actor):
        return [{"code": "g", "detail": "g"}]

    pipeline.register_guard("open", guard)
    pipeline.register_guard("open", guard)
    assert pipeline.guards("open") == [guard]
    pipeline.unregister_guard("open", guard)
    assert pipeline.guards("open") == []
    with pytest.raises(ValueError):
        pipeline.register_guard("flying", guard)
    with pytest.raises(InvalidInput) as unknown:
        pipeline.rule("flying")
    assert "to" in unknown.value.extra["fields"]


def test_targets_activities_and_the_table_come_from_the_rules():
    pipeline = _door_pipeline()
    assert pipeline.allowed_targets("closed") == ["open", "bricked", "rusted"]
    assert pipeline.allowed_targets("closed", automatic=False) == ["open", "bricked"]
    assert pipeline.allowed_targets("ajar") == ["closed"]
    assert pipeline.targets() == ["open", "closed", "bricked"]
    assert pipeline.targets(signed=False) == ["open", "closed"]
    assert pipeline.targets(signed=None, automatic=None) == ["open", "closed", "bricked", "rusted"]
    assert pipeline.allowed_activities("closed") == ["painting"] and pipeline.allowed_activities("open") == []
    assert pipeline.from_states("painting") == frozenset({"closed"})
    assert pipeline.state_conditions(Door("open"), "painting")[0]["code"] == "wrong_status"
    assert pipeline.table()[0] == {"to": "open", "from": ["closed"], "roles": ["porter"], "signed": False,
                                   "automatic": False, "description": "swing it open"}
