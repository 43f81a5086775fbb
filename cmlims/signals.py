"""Users, groups, permissions and logins into the audit trail (Part 11 §11.10(e), §11.300(d)).

Django's auth models are not ours to subclass, so their changes are recorded from signals (the one
place signals write: there is no service of ours in these paths). The acting user is the one of the
current request; None (recorded as "system") for a management command or migration. A failed login
has no actor: it is recorded as "anonymous", with the user name that was tried.
"""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from cmlims import context, logins, roles
from cmlims.audit import Action, audit_record, diff, snapshot
from cmlims.exceptions import InvalidInput
from cmlims.middleware import session_mark_seen

User = get_user_model()
_SNAPSHOT_ATTR = "_cmlims_audit_before"
_CLEARED_ATTR = "_cmlims_audit_cleared"
_HIDDEN = {"password", "last_login"}  # the hash is never logged; logins have their own entries

# m2m "through" model -> the field name as seen from its forward side
_M2M_FIELDS = {
    User.groups.through: "groups",
    User.user_permissions.through: "user_permissions",
    Group.permissions.through: "permissions",
}


def _record(**kwargs) -> None:
    with transaction.atomic():
        audit_record(actor=context.current_user(), **kwargs)


def _label(obj) -> str:
    if isinstance(obj, Permission):
        return f"{obj.content_type.app_label}.{obj.codename}"
    if isinstance(obj, Group):
        return obj.name
    return obj.get_username() if hasattr(obj, "get_username") else str(obj)


def _visible(values: dict) -> dict:
    return {k: v for k, v in values.items() if k not in _HIDDEN}


def _request_facts(request) -> dict:
    if request is None:
        return {}
    meta = getattr(request, "META", {})
    return {"remote_addr": meta.get("REMOTE_ADDR", ""), "path": getattr(request, "path", "")}


@receiver(pre_save, sender=User, dispatch_uid="cmlims_user_pre_save")
@receiver(pre_save, sender=Group, dispatch_uid="cmlims_group_pre_save")
def _remember_before(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance._state.adding or not instance.pk:
        return
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # the login itself: recorded as "logged in"
    stored = sender._base_manager.filter(pk=instance.pk).first()
    setattr(instance, _SNAPSHOT_ATTR, snapshot(stored) if stored else {})


@receiver(post_save, sender=User, dispatch_uid="cmlims_user_post_save")
@receiver(post_save, sender=Group, dispatch_uid="cmlims_group_post_save")
def _record_save(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    after = snapshot(instance)
    if created:
        changes = {k: [None, v] for k, v in _visible(after).items()}
        if after.get("password"):
            changes["password"] = [None, "(set)"]
    else:
        if not hasattr(instance, _SNAPSHOT_ATTR):
            return  # a last_login-only save
        before = getattr(instance, _SNAPSHOT_ATTR)
        delattr(instance, _SNAPSHOT_ATTR)
        changes = diff(_visible(before), _visible(after))
        if "password" in after and before.get("password") != after["password"]:
            changes["password"] = ["(hidden)", "(changed)"]
        if not changes:
            return
    _record(action=Action.CREATED if created else Action.CHANGED, obj=instance, changes=changes)


@receiver(pre_delete, sender=User, dispatch_uid="cmlims_user_pre_delete")
@receiver(pre_delete, sender=Group, dispatch_uid="cmlims_group_pre_delete")
def _remember_deleted(sender, instance, **kwargs):
    state = _visible(snapshot(instance))
    if isinstance(instance, Group):
        state["permissions"] = sorted(_label(p) for p in instance.permissions.select_related("content_type"))
        state["members"] = sorted(u.get_username() for u in instance.user_set.all())
    setattr(instance, _SNAPSHOT_ATTR, state)


@receiver(post_delete, sender=User, dispatch_uid="cmlims_user_post_delete")
@receiver(post_delete, sender=Group, dispatch_uid="cmlims_group_post_delete")
def _record_delete(sender, instance, **kwargs):
    state = getattr(instance, _SNAPSHOT_ATTR, {})
    _record(action=Action.DELETED, obj=instance, changes={k: [v, None] for k, v in state.items()})


def _through_pks(sender, instance, model) -> set:
    """The pks of ``model`` linked to ``instance`` through ``sender`` (read before a clear)."""
    source = next(f for f in sender._meta.fields if f.is_relation and isinstance(instance, f.related_model))
    target = next(f for f in sender._meta.fields if f.is_relation and f.related_model is model and f is not source)
    return set(sender.objects.filter(**{source.attname: instance.pk}).values_list(target.attname, flat=True))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="cmlims_superuser_no_gmp_group")
def _refuse_superuser_in_gmp_group(sender, instance, action, reverse, model, pk_set, **kwargs):
    """The backstop behind the admin's user form: no path (shell, group side, demo) puts a superuser into a
    GMP group. Refused before anything is written, so the trail has nothing to record."""
    if action != "pre_add" or not pk_set:
        return
    if reverse:  # group.user_set.add(...): ``instance`` is the group, ``pk_set`` the users
        pairs = [(user, [instance.name]) for user in model._default_manager.filter(pk__in=pk_set, is_superuser=True)]
    else:
        pairs = [(instance, list(model._default_manager.filter(pk__in=pk_set).values_list("name", flat=True)))]
    for user, names in pairs:
        problem = roles.superuser_gmp_refusal(is_superuser=user.is_superuser, group_names=names)
        if problem:
            raise InvalidInput(f"{user.get_username()}: {problem}.", code=roles.SUPERUSER_REFUSED,
                               fields={"groups": [problem]})


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="cmlims_user_groups")
@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="cmlims_user_perms")
@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="cmlims_group_perms")
def _record_membership(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action == "pre_clear":
        setattr(instance, _CLEARED_ATTR, _through_pks(sender, instance, model))
        return
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    if action == "post_clear":
        pk_set = getattr(instance, _CLEARED_ATTR, set())
    if not pk_set:
        return
    verb = "added" if action == "post_add" else "removed"
    field = _M2M_FIELDS[sender]
    related = model._default_manager.filter(pk__in=pk_set)
    if model is Permission:
        related = related.select_related("content_type")
    if reverse:
        # e.g. group.user_set.add(user): recorded on each user (its history shows it), naming the group.
        for other in related:
            _record(action=Action.PERMISSIONS_CHANGED, obj=other, changes={field: {verb: [_label(instance)]}})
        return
    _record(action=Action.PERMISSIONS_CHANGED, obj=instance,
            changes={field: {verb: sorted(_label(o) for o in related)}})


@receiver(user_logged_in, dispatch_uid="cmlims_logged_in")
def _record_login(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        session_mark_seen(request.session)  # the idle time counts from the login
    with transaction.atomic():
        audit_record(actor=user, action=Action.LOGGED_IN, obj=user, changes=_request_facts(request))


@receiver(user_logged_out, dispatch_uid="cmlims_logged_out")
def _record_logout(sender, request, user, **kwargs):
    if user is not None:
        with transaction.atomic():
            audit_record(actor=user, action=Action.LOGGED_OUT, obj=user, changes=_request_facts(request))


@receiver(user_login_failed, dispatch_uid="cmlims_login_failed")
def _record_login_failed(sender, credentials, request=None, **kwargs):
    """Actor "anonymous"; coalesced per user name and address per window (cmlims.logins)."""
    logins.login_failure_record(credentials=credentials, request=request)


@receiver(user_locked_out, dispatch_uid="cmlims_locked_out")
def _record_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    logins.login_lockout_record(request=request, username=username, ip_address=ip_address)
