"""Every audited model, found in the app registry (so models added later are covered without editing this):

1. every unsafe write path raises ``UnauditedWrite`` (save, create, get_or_create, update_or_create, bulk_create,
   bulk_update, queryset update and delete, instance delete, a cascade from another row; on the default and
   the base manager);
2. every audit API path (create, update, bulk create, bulk update, queryset update, void) leaves exactly one
   entry per changed row.

Rows for (2) are built generically from the model's fields; a model whose database constraints need
particular values lists them in ``OVERRIDES`` (field values, or the field the test changes).
"""

import datetime as dt
import decimal
import itertools
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import F
from django.db.models.deletion import Collector
from django.utils import timezone

from cmlims.audit import (
    Action,
    AuditedModel,
    AuditedQuerySet,
    UnauditedWrite,
    audited_bulk_create,
    audited_bulk_update,
    audited_models,
    audited_queryset_update,
    audited_save,
    audited_update,
    audited_void,
)
from cmlims.models import AuditEntry

pytestmark = pytest.mark.django_db

MODELS = audited_models()
LABELS = [m._meta.label for m in MODELS]
NOWHERE = 10**12  # a pk no row has

# label -> {"values": {field: value or callable(n)}, "change": field name}
OVERRIDES: dict[str, dict] = {
    # One open lock per user name or address (a partial unique constraint): each row its own subject.
    "cmlims.LoginLock": {"values": {"value": lambda n: f"user{n}"}, "change": "failures"},
}

_counter = itertools.count(1)


def test_the_walk_finds_the_audited_models():
    # The core's own and the fixture's models at least; every app's GMP models join automatically.
    assert {"cmlims.ApiToken", "esign.Signature", "auditfixture.FixtureRecord"} <= set(LABELS)
    for model in MODELS:
        assert issubclass(model, AuditedModel)


# --- 1. unsafe paths raise ---------------------------------------------------------------------------


def _some_field(model) -> models.Field:
    return next(f for f in model._meta.concrete_fields if not f.primary_key)


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.req("README-NO-DELETE", "P11-11.10e")
def test_every_unsafe_write_path_raises(label):
    model = next(m for m in MODELS if m._meta.label == label)
    field = _some_field(model)
    for manager in {model._default_manager, model._base_manager, *model._meta.managers}:
        assert isinstance(manager.all(), AuditedQuerySet), f"{label}.{manager.name} is not an audited manager"
        attempts = {
            "create": lambda m=manager: m.create(),
            "get_or_create": lambda m=manager: m.get_or_create(pk=NOWHERE),
            "update_or_create": lambda m=manager: m.update_or_create(pk=NOWHERE),
            "bulk_create": lambda m=manager: m.bulk_create([model()]),
            "bulk_update": lambda m=manager: m.bulk_update([model(pk=NOWHERE)], [field.name]),
            "queryset update": lambda m=manager: m.all().update(**{field.attname: None}),
            "filtered update": lambda m=manager: m.filter(pk=NOWHERE).update(**{field.attname: None}),
            "queryset delete": lambda m=manager: m.all().delete(),
        }
        for name, attempt in attempts.items():
            with pytest.raises(UnauditedWrite):
                attempt()
                pytest.fail(f"{label}.{manager.name}: {name} did not raise")
    with pytest.raises(UnauditedWrite):
        model().save()
    with pytest.raises(UnauditedWrite):
        model(pk=NOWHERE).save(update_fields=[field.name])
    with pytest.raises(UnauditedWrite):
        model(pk=NOWHERE).delete()
    collector = Collector(using="default")  # what deleting a parent row with on_delete=CASCADE runs
    collector.collect([model(pk=NOWHERE)])
    with pytest.raises(UnauditedWrite):
        collector.delete()


# --- 2. audit API paths: one entry per changed row -----------------------------------------------------


def _value_for(field: models.Field, n: int):
    if field.choices:
        return field.choices[0][0] if not isinstance(field.choices[0][1], list | tuple) else field.choices[0][1][0][0]
    if isinstance(field, models.EmailField):
        return f"t{n}@example.org"
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.FileField):
        return f"fixtures/file{n}.txt"
    if isinstance(field, models.CharField):
        return f"T{n}"[: field.max_length]
    if isinstance(field, models.TextField):
        return f"text {n}"
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, models.DecimalField):
        return decimal.Decimal("1")
    if isinstance(field, models.FloatField):
        return 1.0
    if isinstance(field, models.IntegerField):
        return 1
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return timezone.localdate()
    if isinstance(field, models.TimeField):
        return dt.time(12, 0)
    if isinstance(field, models.DurationField):
        return dt.timedelta(minutes=1)
    if isinstance(field, models.JSONField):
        return {}
    raise AssertionError(f"no sample value for {field.model._meta.label}.{field.name} ({type(field).__name__}): "
                         f"add it to OVERRIDES in {__name__}")


def _parent(model, actor):
    if model is get_user_model():
        return actor
    if model is ContentType:
        return ContentType.objects.get_for_model(AuditEntry)
    obj = build(model, actor)
    if isinstance(obj, AuditedModel):
        return audited_save(obj, actor=actor, clean=False)
    obj.save()
    return obj


def build(model, actor):
    """An unsaved instance that satisfies the database (not necessarily the model's validation)."""
    n = next(_counter)
    override = OVERRIDES.get(model._meta.label, {}).get("values", {})
    values = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in override:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if field.is_relation:
            if not field.null:
                values[field.name] = _parent(field.related_model, actor)
            continue
        if field.has_default() or field.null or (field.blank and field.empty_strings_allowed):
            continue
        values[field.name] = _value_for(field, n)
    for name, value in override.items():
        values[name] = value(n) if callable(value) else value
    return model(**values)


RESERVED = {"reason", "action", "clean", "actor"}  # audited_update's own keywords: set these via audited_save
_TEXT = (models.TextField, models.CharField)
_NUMBER = (models.DecimalField, models.IntegerField, models.FloatField)


def _change_field(model) -> models.Field:
    """A plain field the walk can change without breaking the model's constraints: text first, then numbers."""
    name = OVERRIDES.get(model._meta.label, {}).get("change")
    if name:
        return model._meta.get_field(name)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.is_relation and not f.choices
              and not f.unique and f.name not in RESERVED and f.name not in getattr(model, "audit_exclude", ())]
    texts = [f for f in fields if type(f) in _TEXT and (type(f) is models.TextField or f.max_length >= 4)]
    texts.sort(key=lambda f: (type(f) is not models.TextField, f.name == "void_reason"))
    numbers = [f for f in fields if isinstance(f, _NUMBER)]
    for field in (*texts, *numbers):
        return field
    raise AssertionError(f"{model._meta.label}: name a field to change in OVERRIDES")


def _changed(field: models.Field, current, tag: str):
    if isinstance(field, _NUMBER):
        return (current or 0) + 1
    value = f"{tag}{current or ''}"
    return value[: field.max_length] if isinstance(field, models.CharField) else value


def _entries(obj) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)))


@pytest.mark.parametrize("label", LABELS)
def test_every_audit_api_path_leaves_one_entry_per_changed_row(label, make_user):
    model = next(m for m in MODELS if m._meta.label == label)
    actor = make_user(f"walker{next(_counter)}")
    change = _change_field(model)

    def new_value(obj, tag: str):
        return _changed(change, getattr(obj, change.attname), tag)

    one = audited_save(build(model, actor), actor=actor, clean=False)
    assert [e.action for e in _entries(one)] == [Action.CREATED], label

    audited_update(one, actor=actor, reason="walk", clean=False, **{change.name: new_value(one, "u")})
    assert [e.action for e in _entries(one)] == [Action.CREATED, Action.CHANGED], label
    assert list(_entries(one)[-1].changes) == [change.attname]

    many = audited_bulk_create(model, [build(model, actor) for _ in range(3)], actor=actor, clean=False)
    for obj in many:
        assert [e.action for e in _entries(obj)] == [Action.CREATED], label

    for obj in many[:2]:  # the third is unchanged: no entry
        setattr(obj, change.attname, new_value(obj, "b"))
    assert audited_bulk_update(many, [change.name], actor=actor, reason="walk") == 2
    assert [len(_entries(obj)) for obj in many] == [2, 2, 1], label

    pks = [obj.pk for obj in many]
    # Numbers change by an expression (each row its own new value), text to one new value.
    value = F(change.attname) + 1 if isinstance(change, _NUMBER) else new_value(many[2], "q")
    assert audited_queryset_update(model.objects.filter(pk__in=pks), actor=actor, reason="walk",
                                   **{change.attname: value}) == 3
    assert [len(_entries(obj)) for obj in many] == [3, 3, 2], label

    if hasattr(one, "voided_at"):
        audited_void(one, actor=actor, reason="walk")
        assert _entries(one)[-1].action == Action.VOIDED
