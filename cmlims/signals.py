"""Users, groups, permissions and logins into the audit trail (rule 8).

Django's auth models are not ours to subclass, so their changes are recorded from signals;
the acting user is the one of the current request (None = a management command or migration).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from cmlims import context
from cmlims.audit import Action, audit_record, diff, snapshot

User = get_user_model()
_SNAPSHOT_ATTR = "_cmlims_audit_before"


def _record(**kwargs) -> None:
    with transaction.atomic():
        audit_record(actor=context.current_user(), **kwargs)


@receiver(pre_save, sender=User, dispatch_uid="cmlims_user_pre_save")
@receiver(pre_save, sender=Group, dispatch_uid="cmlims_group_pre_save")
def _remember_before(sender, instance, raw=False, **kwargs):
    if raw or instance._state.adding or not instance.pk:
        return
    stored = sender._base_manager.filter(pk=instance.pk).first()
    setattr(instance, _SNAPSHOT_ATTR, snapshot(stored) if stored else {})


@receiver(post_save, sender=User, dispatch_uid="cmlims_user_post_save")
@receiver(post_save, sender=Group, dispatch_uid="cmlims_group_post_save")
def _record_save(sender, instance, created, raw=False, **kwargs):
    if raw:
        return
    after = snapshot(instance)
    after.pop("password", None)
    after.pop("last_login", None)  # logins have their own entries
    if created:
        changes = {k: [None, v] for k, v in after.items()}
    else:
        before = getattr(instance, _SNAPSHOT_ATTR, {})
        password_changed = before.get("password") != instance.password
        changes = diff({k: v for k, v in before.items() if k in after}, after)
        if password_changed:
            changes["password"] = ["(hidden)", "(changed)"]
        if not changes:
            return
    _record(action=Action.CREATED if created else Action.CHANGED, obj=instance, changes=changes)


def _m2m_names(model, pk_set) -> list[str]:
    if not pk_set:
        return []
    if model is Group:
        return sorted(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
    return sorted(
        f"{app}.{code}" for app, code in model.objects.filter(pk__in=pk_set).values_list(
            "content_type__app_label", "codename"
        )
    )


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="cmlims_user_groups")
@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="cmlims_user_perms")
@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="cmlims_group_perms")
def _record_membership(sender, instance, action, reverse, model, pk_set, **kwargs):
    if action not in {"post_add", "post_remove", "post_clear"}:
        return
    if reverse:
        # e.g. group.user_set.add(user): record it on each user for a readable history.
        field = "groups" if sender is User.groups.through else "user_permissions"
        for other in model.objects.filter(pk__in=pk_set or []):
            verb = "added" if action == "post_add" else "removed"
            _record(action=Action.PERMISSIONS_CHANGED, obj=other, changes={field: {verb: [str(instance)]}})
        return
    field = {
        User.groups.through: "groups",
        User.user_permissions.through: "user_permissions",
        Group.permissions.through: "permissions",
    }[sender]
    verb = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}[action]
    _record(action=Action.PERMISSIONS_CHANGED, obj=instance, changes={field: {verb: _m2m_names(model, pk_set)}})


@receiver(user_logged_in, dispatch_uid="cmlims_logged_in")
def _record_login(sender, request, user, **kwargs):
    with transaction.atomic():
        audit_record(actor=user, action=Action.LOGGED_IN, obj=user)


@receiver(user_logged_out, dispatch_uid="cmlims_logged_out")
def _record_logout(sender, request, user, **kwargs):
    if user is not None:
        with transaction.atomic():
            audit_record(actor=user, action=Action.LOGGED_OUT, obj=user)


@receiver(user_login_failed, dispatch_uid="cmlims_login_failed")
def _record_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        audit_record(
            user=None,
            action=Action.LOGIN_FAILED,
            object_type="auth.user",
            object_id=username,
            object_repr=username,
            changes={},
        )
