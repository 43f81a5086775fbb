"""The superuser manages users and signs nothing (DESIGN.md "Roles"): not even from inside a GMP group, and no
path puts a superuser into one."""

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client

from cmlims import roles
from cmlims.audit import Action, chain_head
from cmlims.exceptions import InvalidInput, PermissionDenied
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.req("P11-11.10g", "P11-11.10d")
def test_require_role_refuses_a_superuser_even_in_a_gmp_group(make_user):
    officer = make_user("qcroot", roles.QC_OFFICER)
    officer.is_superuser = True  # as an account made before the refusal existed, or by SQL
    officer.save()
    with pytest.raises(PermissionDenied) as refused:
        roles.require_role(officer, roles.QC_OFFICER, "Releasing a lot")
    assert refused.value.code == roles.SUPERUSER_REFUSED == "superuser_takes_no_gmp_action"
    assert "superuser" in refused.value.message and "Releasing a lot" in refused.value.message
    roles.require_role(make_user("qc9", roles.QC_OFFICER), roles.QC_OFFICER, "Releasing a lot")  # others still may


@pytest.mark.req("P11-11.10g")
def test_a_superuser_in_a_gmp_group_cannot_release_through_the_api(releasable, chain, auth_client):
    chain.qc.is_superuser = True
    chain.qc.save()
    client = auth_client(chain.qc)
    body = {"username": chain.qc.username, "password": PASSWORD, "reason": "",
            "audit_reviewed_through": chain_head().sequence}
    response = client.post(f"/api/v1/lots/{releasable.lot_number}/release/", body, format="json")
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "superuser_takes_no_gmp_action"
    releasable.refresh_from_db()
    assert releasable.status == "qc_complete"


@pytest.mark.req("P11-11.10g", "RULE-8")
def test_a_superuser_is_never_put_into_a_gmp_group(make_user):
    root = make_user("root", is_superuser=True, is_staff=True)
    qc = Group.objects.get(name=roles.QC_OFFICER)
    before = AuditEntry.objects.count()
    for add in (lambda: root.groups.add(qc), lambda: qc.user_set.add(root)):
        with pytest.raises(InvalidInput) as refused, transaction.atomic():  # Django adds without a savepoint
            add()
        assert refused.value.code == roles.SUPERUSER_REFUSED and roles.QC_OFFICER in refused.value.message
    assert not root.groups.exists() and AuditEntry.objects.count() == before  # nothing changed, nothing recorded
    root.groups.add(Group.objects.create(name="Readers"))  # a group that is no GMP role is fine
    lab = make_user("lab7")
    lab.groups.add(qc)  # and so is a GMP role for anyone else
    assert AuditEntry.objects.filter(action=Action.PERMISSIONS_CHANGED, object_id=str(lab.pk)).exists()


@pytest.mark.req("P11-11.10g", "RULE-8")
def test_the_admin_user_form_refuses_a_superuser_in_a_gmp_group_with_a_clear_error(make_user):
    make_user("root", is_superuser=True, is_staff=True)
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    user = make_user("lab3", roles.LAB_STAFF, is_staff=True)
    lab = Group.objects.get(name=roles.LAB_STAFF)
    form = {"username": "lab3", "first_name": "Lab", "last_name": "Three", "email": "", "is_active": "on",
            "is_staff": "on", "groups": [lab.pk], "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}
    response = client.post(f"/admin/auth/user/{user.pk}/change/", {**form, "is_superuser": "on"})
    assert response.status_code == 200  # the form again, with the error
    assert "A superuser cannot hold a GMP role (Lab staff)" in response.content.decode()
    user.refresh_from_db()
    assert not user.is_superuser
    assert not AuditEntry.objects.filter(action=Action.CHANGED, object_id=str(user.pk)).exists()
    # Taking the GMP role away in the same change makes the superuser acceptable.
    response = client.post(f"/admin/auth/user/{user.pk}/change/", {**form, "groups": [], "is_superuser": "on"})
    assert response.status_code == 302, response.content
    user.refresh_from_db()
    assert user.is_superuser and not user.groups.exists()
    changed = AuditEntry.objects.filter(action=Action.CHANGED, object_id=str(user.pk)).latest("sequence")
    assert changed.changes["is_superuser"] == [False, True]
