"""The manufacturing demo seeder: a believable history through the services, idempotent."""

import pytest
from django.db import transaction

from batches import demo
from batches.models import CellSource, CMLot, LotStatus, Vial
from batches.selectors import lot_participant_ids
from cmlims.demo import demo_users_ensure
from cmlims.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_seed_builds_lots_in_each_manufacturing_state_and_is_idempotent():
    with transaction.atomic():
        users = demo_users_ensure()
        demo.seed(users)
    statuses = sorted(CMLot.objects.values_list("status", flat=True))
    assert statuses.count(LotStatus.PACKAGED) == 5
    assert LotStatus.FREEZE_DRYING in statuses and LotStatus.POOLED in statuses
    assert all(d.is_eligible_with_consent for d in CellSource.objects.all()) and CellSource.objects.count() == 2
    packaged = CMLot.objects.filter(status=LotStatus.PACKAGED).first()
    assert packaged.expiry and packaged.yield_percent and Vial.objects.filter(lot=packaged).count() > 50
    assert lot_participant_ids(packaged) == {users["lab1"].pk, users["lab2"].pk}
    entries = AuditEntry.objects.count()
    with transaction.atomic():
        demo.seed(users)
    assert AuditEntry.objects.count() == entries
