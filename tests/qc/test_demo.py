"""The QC demo seeder on top of manufactured lots: every story the issue asks for, and idempotent."""

import pytest

from batches.models import CMLot, LotStatus
from cmlims.demo import demo_users_ensure
from cmlims.esign.models import Meaning, Signature
from cmlims.investigations.models import Investigation, Kind, Status
from qc import selectors
from qc.demo import seed, seed_specifications
from qc.models import QCResult
from tests.support.builders import lot_at

pytestmark = pytest.mark.django_db


def test_demo_seed_tells_every_qc_story(chain):
    users = demo_users_ensure()
    seed_specifications(users)  # as config.demo runs it: signed into force before the lots are pooled
    pooled = lot_at(chain, LotStatus.POOLED)
    packaged = [lot_at(chain, LotStatus.PACKAGED) for _ in range(4)]
    seed(users)

    released, releasable, failing, rejected = (CMLot.objects.get(pk=lot.pk) for lot in packaged)
    assert released.status == LotStatus.RELEASED
    signature = Signature.objects.get(meaning=Meaning.RELEASED)
    assert signature.signer == users["qc1"] and signature.object_id == str(released.pk)
    closed = selectors.lot_investigations(released).get()
    assert closed.status == Status.CLOSED and closed.conclusion and closed.related_lots_checked
    # The page-wide check rebuilds the same content (results, retest, investigation, review): unchanged.
    from batches.selectors import lot_signoffs

    signoffs = lot_signoffs([released, rejected])
    assert [s.current_status.changed_after_signing for pk in (released.pk, rejected.pk) for s in signoffs[pk]] == [
        False, False]
    from cmlims.esign.services import signature_current_status

    assert not signature_current_status(signoffs[rejected.pk][0], rejected).changed_after_signing
    assert rejected.status == LotStatus.REJECTED
    # The failing pH and the deviation raised by lab2, both on the packaged lot.
    assert Investigation.objects.filter(status=Status.OPEN).count() == 2

    assert releasable.status == LotStatus.QC_COMPLETE
    for officer in ("qc1", "qc2"):  # both may release it: only the audit review is left to confirm
        assert [c["code"] for c in selectors.release_conditions(releasable, users[officer])] == []

    assert failing.status == LotStatus.PACKAGED
    open_investigation = selectors.lot_investigations(failing, open_only=True).get(kind=Kind.OOS)
    assert "pH" in open_investigation.title
    deviation = selectors.lot_investigations(failing, open_only=True).get(kind=Kind.DEVIATION)
    assert deviation.opened_by == users["lab2"]
    assert "deviation_open" in {c["code"] for c in selectors.release_conditions(failing, users["qc1"])}

    # Results for every demo lot, approved by qc2; only the two OOS results stay unapproved (the endotoxin one
    # retested on the released lot, the pH one under open investigation).
    unapproved = {released.pk: ["Bacterial endotoxin"], failing.pk: ["pH (reconstituted)"]}
    for lot in (pooled, *packaged):
        assert QCResult.objects.filter(lot=lot).exists(), lot.lot_number
        left = QCResult.objects.filter(lot=lot, status="valid", approved_by=None)
        assert list(left.values_list("spec_item__test", flat=True)) == unapproved.get(lot.pk, []), lot.lot_number
    approvers = set(QCResult.objects.exclude(approved_by=None).values_list("approved_by__username", flat=True))
    analysts = set(QCResult.objects.values_list("analyst__username", flat=True))
    assert approvers == {"qc2"} and analysts == {"lab1", "lab2"}

    from cmlims.replay import records_verify

    assert [str(m) for m in records_verify()[1]] == []  # every demo record is what its trail says

    count = QCResult.objects.count()
    seed(users)  # idempotent
    assert QCResult.objects.count() == count
