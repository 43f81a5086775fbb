"""Status pipelines as data (Oscar's pipeline, Zulip's one-action-per-change): one per aggregate, declared once.

An app declares ``Pipeline(name, rules=[Rule(...), ...], ...)`` next to its models (``batches.lifecycle``
for lots and vials, ``batches.shipping.lifecycle`` for shipments) and writes ONE entry point
``<noun>_set_status`` / ``<noun>_transition`` that locks the row (the app's ``locks`` module), checks the
rule's roles (403), gathers ``unmet_conditions`` and raises ``refusal`` (409 listing every unmet
condition), then writes the change with its audit entry. The admin and the API read the same rules
(``allowed_targets``, ``targets``, ``table``), so nothing copies the table.

Arguments: services take the aggregate as the model object they act on (a ``CMLot``, ``Vial`` or
``Shipment``; the entry points re-read it under a lock), and the inbound adapters (API views, admin)
turn the natural key in the URL (lot number, serial, shipment id) into that object with a selector.

A Rule names its target, the states it may be reached from, the roles allowed, whether it needs an
electronic signature (only the signed entry point applies it), whether the system applies it without a
user (``automatic``), and the refusal code its unmet conditions are reported under. ``moves=False``
marks a change that gates on the state but writes something else (a lot's hold and unhold).

A pipeline also names the model it moves (``object_type``, the audit trail's ``app.model``) and the fields
only its writers move (``routine_fields``: the status, and for a vial its storage location). Each move is
checked by the rules, so a change to those fields alone is routine: the sign-off review reads them
(``pipeline_routine_fields``) instead of keeping its own list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cmlims.exceptions import Conflict, field_error

Condition = dict[str, str]
Guard = Callable[[Any, Any], list[Condition]]


# object type -> the fields its pipeline's writers alone move (filled as each pipeline is declared).
_ROUTINE_FIELDS: dict[str, frozenset[str]] = {}


def pipeline_routine_fields(object_type: str) -> frozenset[str]:
    """The fields only ``object_type``'s pipeline moves (empty when it has no pipeline)."""
    return _ROUTINE_FIELDS.get(object_type, frozenset())


@dataclass(frozen=True)
class Rule:
    to: str
    from_states: frozenset[str]
    roles: frozenset[str] = frozenset()
    signed: bool = False
    automatic: bool = False
    description: str = ""
    moves: bool = True
    refusal_code: str = "transition_not_allowed"
    # ``{subject}``, ``{to}`` and ``{details}`` are filled in; the default names every condition.
    refusal_message: str = "{subject} cannot move to {to}: {details}"
    action: str = ""  # the step in words ("packing"), for messages; defaults to "moving to <to>"

    @property
    def doing(self) -> str:
        return self.action or f"moving to {self.to}"


def _default_state_condition(pipeline: Pipeline, obj: Any, rule: Rule) -> Condition:
    allowed = ", ".join(sorted(rule.from_states))
    return {"code": "wrong_status",
            "detail": f"{pipeline.subject(obj)} is {pipeline.state_of(obj)}; {rule.to} can only be reached from "
                      f"{allowed}"}


@dataclass
class Pipeline:
    """The rules of one aggregate's states. ``before_state(obj, rule)`` and ``after_state(obj, rule)`` add the
    aggregate's standing refusals (voided; on hold) before and after the wrong-state refusal, which
    ``state_condition(pipeline, obj, rule)`` words."""

    name: str
    rules: Iterable[Rule]
    subject: Callable[[Any], str] = str
    state_of: Callable[[Any], str] = lambda obj: obj.status
    before_state: Callable[[Any, Rule], list[Condition]] = lambda obj, rule: []
    after_state: Callable[[Any, Rule], list[Condition]] = lambda obj, rule: []
    state_condition: Callable[[Pipeline, Any, Rule], Condition] = _default_state_condition
    # What may be done to the aggregate without changing its state, and in which states ("allocating vials").
    activities: dict[str, frozenset[str]] = field(default_factory=dict)
    # The audit trail's name of the model moved ("batches.vial") and the fields only the pipeline's writers move.
    object_type: str = ""
    routine_fields: frozenset[str] = frozenset({"status"})
    _guards: dict[str, list[Guard]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.rules = {rule.to: rule for rule in self.rules}
        if self.object_type:
            _ROUTINE_FIELDS[self.object_type] = frozenset(self.routine_fields)

    # --- declaration ---------------------------------------------------------------------------------------

    def register_guard(self, to: str, fn: Guard) -> None:
        """Add a precondition for reaching ``to``: ``fn(obj, actor) -> [{"code", "detail"}]`` (empty = met).

        Registering the same function twice (``ready()`` running again in tests) has no effect.
        """
        if to not in self.rules:
            raise ValueError(f"unknown {self.name} target {to!r}; known: {', '.join(self.rules)}")
        guards = self._guards.setdefault(to, [])
        if fn not in guards:
            guards.append(fn)

    def unregister_guard(self, to: str, fn: Guard) -> None:
        self._guards.get(to, []).remove(fn)

    def guards(self, to: str) -> list[Guard]:
        return list(self._guards.get(to, ()))

    # --- reading: services, admin, API ---------------------------------------------------------------------

    def rule(self, to: str) -> Rule:
        """The rule for ``to``; an unknown target is a 400 on the field ``to``."""
        rule = self.rules.get(to)
        if rule is None:
            raise field_error("to", f"unknown status {to!r}; one of: {', '.join(self.rules)}")
        return rule

    def targets(self, *, signed: bool | None = None, automatic: bool | None = False,
                moves: bool | None = True) -> list[str]:
        """Targets filtered by kind (None = either): by default what a user may ask for by status."""
        return [to for to, rule in self.rules.items()
                if (signed is None or rule.signed == signed) and (automatic is None or rule.automatic == automatic)
                and (moves is None or rule.moves == moves)]

    def allowed_targets(self, state: str, *, moves: bool | None = True, automatic: bool | None = None) -> list[str]:
        """Targets reachable from ``state`` by some rule (guards aside); ``automatic=False``: what a user may ask."""
        return [to for to, rule in self.rules.items()
                if state in rule.from_states and (moves is None or rule.moves == moves)
                and (automatic is None or rule.automatic == automatic)]

    def from_states(self, name: str) -> frozenset[str]:
        """The states a target (or an activity) starts from."""
        return self.activities[name] if name in self.activities else self.rule(name).from_states

    def allowed_activities(self, state: str) -> list[str]:
        return [name for name, states in self.activities.items() if state in states]

    def activity_rule(self, activity: str) -> Rule:
        """An activity as a rule that stays in place (for the wrong-state wording)."""
        states = self.activities[activity]
        return Rule(activity, states, moves=False, action=activity)

    def table(self) -> list[dict[str, Any]]:
        """The rules as rows (admin status tables, documentation)."""
        return [{"to": rule.to, "from": sorted(rule.from_states), "roles": sorted(rule.roles),
                 "signed": rule.signed, "automatic": rule.automatic, "description": rule.description}
                for rule in self.rules.values()]

    def state_conditions(self, obj: Any, to: str) -> list[Condition]:
        """Only the wrong-state refusal (empty when ``obj`` may move to ``to``, or do the activity ``to``,
        from where it is)."""
        rule = self.activity_rule(to) if to in self.activities else self.rule(to)
        if self.state_of(obj) in rule.from_states:
            return []
        return [self.state_condition(self, obj, rule)]

    def unmet_conditions(self, obj: Any, to: str, actor: Any) -> list[Condition]:
        """EVERY reason ``obj`` cannot reach ``to`` now: the aggregate's standing refusals, the state, then
        each guard. Roles are not conditions: they are checked by the entry point (403, not 409)."""
        rule = self.rule(to)
        conditions = [*self.before_state(obj, rule), *self.state_conditions(obj, to), *self.after_state(obj, rule)]
        for guard in self.guards(to):
            conditions.extend(guard(obj, actor))
        return conditions

    def refusal(self, obj: Any, to: str, conditions: list[Condition], *, code: str | None = None) -> Conflict:
        """The one 409 for ``conditions``: the rule's code and message, every condition listed."""
        rule = self.rule(to)
        details = "; ".join(c["detail"] for c in conditions)
        return Conflict(rule.refusal_message.format(subject=self.subject(obj), to=to, details=details),
                        code=code or rule.refusal_code, conditions=conditions)

    def check(self, obj: Any, to: str, actor: Any, *, extra: Iterable[Condition] = ()) -> None:
        """Raise the refusal when anything (``extra``: the caller's own step conditions) is unmet."""
        conditions = [*self.unmet_conditions(obj, to, actor), *extra]
        if conditions:
            raise self.refusal(obj, to, conditions)
