"""Signing services: both components every time, the lockout, every failure audited, content hash."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from cmlims import roles
from cmlims.audit import Action, canonical_json, chain_head
from cmlims.esign.models import Meaning, Signature, SigningFailure
from cmlims.esign.services import signature_sign, signature_status, signing_credentials_verify
from cmlims.exceptions import InvalidInput, SigningLocked
from cmlims.models import AuditEntry
from tests.support.builders import PASSWORD

pytestmark = pytest.mark.django_db

CONTENT = {"lot.lot_number": "CM26-0001", "results": [{"id": 1, "passed": True}]}


@pytest.fixture
def officer(make_user):
    return make_user("qc1", roles.QC_OFFICER, first_name="Priya", last_name="Raman")


def sign(officer, *, password=PASSWORD, username=None, meaning=Meaning.RELEASED, reason="", content=None):
    return signature_sign(subject=officer, signer=officer, username=username or officer.username, password=password,
                          meaning=meaning, reason=reason, content=content or CONTENT, field_list_version="test/1")


def failures(user):
    return AuditEntry.objects.filter(action=Action.SIGNATURE_FAILED, user=user)


@pytest.mark.req("P11-11.50", "A11-14", "P11-11.70")
def test_signature_records_name_time_meaning_hash_and_chain_anchor(officer):
    head_before = chain_head()
    signature = sign(officer)
    assert signature.printed_name == "Priya Raman"
    assert signature.meaning == "released"
    assert signature.signed_at <= timezone.now()
    assert signature.signed_fields == sorted(CONTENT)
    assert (signature.chain_sequence, signature.chain_hash) == tuple(head_before)
    expected = hashlib.sha256(canonical_json({
        "field_list_version": "test/1", "fields": CONTENT,
        "chain_head": {"sequence": head_before.sequence, "hash": head_before.hash},
    }).encode()).hexdigest()
    assert signature.content_sha256 == expected
    assert AuditEntry.objects.filter(action=Action.SIGNED, object_type="esign.signature",
                                     object_id=str(signature.pk)).count() == 1


@pytest.mark.req("P11-11.200a")
def test_user_name_must_be_the_callers(officer, make_user):
    make_user("qc2", roles.QC_OFFICER)
    with pytest.raises(InvalidInput) as exc:
        sign(officer, username="qc2")
    assert "username" in exc.value.extra["fields"]
    assert failures(officer).count() == 1
    assert not Signature.objects.exists()


@pytest.mark.req("P11-11.200a")
def test_password_is_required_every_time(officer):
    with pytest.raises(InvalidInput) as exc:
        sign(officer, password="")
    assert "password" in exc.value.extra["fields"]


def test_reason_required_for_reject_and_recall(officer):
    for meaning in (Meaning.REJECTED, Meaning.RECALLED):
        with pytest.raises(InvalidInput) as exc:
            sign(officer, meaning=meaning, reason="  ")
        assert "reason" in exc.value.extra["fields"]
    assert sign(officer, meaning=Meaning.REJECTED, reason="sterility failed").reason == "sterility failed"


def test_the_meaning_sent_must_be_the_one_the_step_signs_with(officer):
    # Checked before the password: a meaning not confirmed is a recorded failed attempt (issue 13), but it
    # tried no credential, so it counts nothing towards the signing lock.
    with pytest.raises(InvalidInput) as exc:
        signing_credentials_verify(signer=officer, username=officer.username, password="wrong",
                                   meaning=Meaning.RELEASED, meaning_sent=Meaning.REJECTED)
    assert exc.value.extra["fields"] == {"meaning": ["must be 'released' for this signature"]}
    assert [e.changes["failure"] for e in failures(officer)] == ["meaning not confirmed"]
    assert not SigningFailure.objects.filter(user=officer, consecutive__gt=0).exists()
    for sent in (None, Meaning.RELEASED):  # nothing sent means the step's meaning
        signing_credentials_verify(signer=officer, username=officer.username, password=PASSWORD,
                                   meaning=Meaning.RELEASED, meaning_sent=sent)
    with pytest.raises(InvalidInput) as exc:
        signing_credentials_verify(signer=officer, username=officer.username, password=PASSWORD,
                                   meaning=Meaning.SHIPPED, meaning_sent="")
    assert "meaning" in exc.value.extra["fields"]


@pytest.mark.req("P11-11.300")
def test_wrong_password_is_a_field_error_and_audited(officer):
    with pytest.raises(InvalidInput) as exc:
        sign(officer, password="wrong")
    assert "password" in exc.value.extra["fields"]
    entry = failures(officer).get()
    assert entry.changes["failure"] == "wrong password"
    assert entry.changes["consecutive"] == 1


@pytest.mark.req("P11-11.300")
def test_five_wrong_passwords_lock_signing_for_fifteen_minutes(officer):
    for _ in range(4):
        with pytest.raises(InvalidInput):
            sign(officer, password="wrong")
    with pytest.raises(SigningLocked) as exc:
        sign(officer, password="wrong")
    assert 14 * 60 < exc.value.extra["retry_after"] <= 15 * 60
    # Locked: even the right password is refused, and the attempt is audited.
    with pytest.raises(SigningLocked):
        sign(officer)
    assert failures(officer).count() == 6
    assert not Signature.objects.exists()
    # Once the lock has run out, the right password signs again and the count starts over.
    state = SigningFailure.objects.get(user=officer)
    state.locked_until = timezone.now() - timedelta(seconds=1)
    state.save()
    assert sign(officer).pk
    state.refresh_from_db()
    assert state.consecutive == 0 and state.locked_until is None


def test_a_success_resets_the_count(officer):
    for _ in range(4):
        with pytest.raises(InvalidInput):
            sign(officer, password="wrong")
    sign(officer)
    for _ in range(4):
        with pytest.raises(InvalidInput):
            sign(officer, password="wrong")
    assert sign(officer).pk  # 4 + 4 failures with a success between: never locked


def test_lockout_is_per_user(officer, make_user):
    other = make_user("qc2", roles.QC_OFFICER)
    for _ in range(5):
        with pytest.raises((InvalidInput, SigningLocked)):
            sign(officer, password="wrong")
    assert sign(other).signer == other


@pytest.mark.req("P11-11.70")
def test_status_shows_changed_after_signing_only_for_signed_content(officer):
    signature = sign(officer)
    assert not signature_status(signature, dict(CONTENT)).changed_after_signing
    changed = dict(CONTENT, **{"lot.lot_number": "CM26-0002"})
    status = signature_status(signature, changed)
    assert status.changed_after_signing
    assert status.changed_fields == ["lot.lot_number"]
