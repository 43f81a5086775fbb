"""Timelines: the audit entries of an object and of everything under it (a lot and its harvests, runs, vials…).

The core knows no domain, so apps declare what sits under their records:

    register_timeline(CMLot, children=lambda lot: [lot.harvest_contributions.all(), lot.vials.all(),
                                                   ("esign.signature", signature_ids)])

``children(obj)`` returns an iterable of model instances, querysets, or ``(object_type, ids)`` pairs
(object_type as in the audit trail: ``app_label.modelname``). Instances and querysets of models that
are registered too are walked in turn; pairs are taken as they are (no further walk).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import models
from django.db.models import Q, QuerySet

from cmlims.audit import object_type_of

ChildSpec = models.Model | QuerySet | tuple[str, Iterable]
_CHILDREN: dict[str, Callable[[models.Model], Iterable[ChildSpec]]] = {}
MAX_DEPTH = 8


def register_timeline(model: type[models.Model] | str, *, children: Callable[[models.Model], Iterable[ChildSpec]]):
    label = model if isinstance(model, str) else object_type_of(model)
    _CHILDREN[label.lower()] = children


def timeline_registered(model_or_obj) -> bool:
    return object_type_of(model_or_obj) in _CHILDREN


@dataclass
class Timeline:
    root_type: str
    root_id: str
    objects: dict[str, set[str]]  # object_type -> ids covered
    entries: QuerySet

    @property
    def object_count(self) -> int:
        return sum(len(ids) for ids in self.objects.values())


def _collect(obj: models.Model, into: dict[str, set[str]], depth: int) -> None:
    object_type = object_type_of(obj)
    if str(obj.pk) in into[object_type] and depth > 0:
        return
    into[object_type].add(str(obj.pk))
    children = _CHILDREN.get(object_type)
    if children is None or depth >= MAX_DEPTH:
        return
    for child in children(obj):
        if isinstance(child, models.Model):
            _collect(child, into, depth + 1)
        elif isinstance(child, QuerySet):
            if object_type_of(child.model) in _CHILDREN:
                for row in child:
                    _collect(row, into, depth + 1)
            else:  # a leaf: its ids are enough (one query, no instances)
                into[object_type_of(child.model)].update(str(pk) for pk in child.values_list("pk", flat=True))
        else:
            child_type, ids = child
            into[child_type.lower()].update(str(i) for i in ids)


def timeline_for(obj: models.Model) -> Timeline:
    """Entries about ``obj`` and everything registered under it, in chain (sequence) order."""
    from cmlims.models import AuditEntry

    objects: dict[str, set[str]] = defaultdict(set)
    _collect(obj, objects, 0)
    condition = Q()
    for object_type, ids in objects.items():
        if ids:
            condition |= Q(object_type=object_type, object_id__in=sorted(ids))
    entries = AuditEntry.objects.filter(condition).order_by("sequence")
    return Timeline(object_type_of(obj), str(obj.pk), dict(objects), entries)


def object_history(obj_or_type, object_id: str | int | None = None) -> QuerySet:
    """The entries of one object, in chain order."""
    from cmlims.models import AuditEntry

    if object_id is None:
        object_type, object_id = object_type_of(obj_or_type), obj_or_type.pk
    else:
        object_type = obj_or_type
    return AuditEntry.objects.filter(object_type=object_type, object_id=str(object_id)).order_by("sequence")
