"""``__in_ids`` / ``__in_texts``: the rows of ``__in`` for a list of integer or text keys, sent as one array on
PostgreSQL (B8b, B1t)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.models import CMLot, LotStatus, Vial
from tests.support.builders import lot_at

pytestmark = pytest.mark.django_db


@pytest.mark.req("FEAT-PERF-TRACE", "FEAT-PERF-KEYLISTS")
def test_in_ids_finds_what_in_finds_for_keys_and_foreign_keys(chain):
    lots = [lot_at(chain, LotStatus.PACKAGED, vials=3) for _ in range(3)]
    wanted = [lots[0].pk, lots[2].pk, 10**9]  # one id that names nothing
    assert set(CMLot.objects.filter(pk__in_ids=wanted)) == set(CMLot.objects.filter(pk__in=wanted)) == {
        lots[0], lots[2]}
    with CaptureQueriesContext(connection) as queries:
        serials = sorted(Vial.objects.filter(lot_id__in_ids=wanted).values_list("serial", flat=True))
    assert serials == sorted(Vial.objects.filter(lot_id__in=wanted).values_list("serial", flat=True))
    assert {s.rsplit("-", 1)[0] for s in serials} == {lots[0].lot_number, lots[2].lot_number}
    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert ("= ANY(" in sql) if connection.vendor == "postgresql" else (" IN (" in sql)
    assert list(Vial.objects.filter(lot_id__in_ids=[])) == []
    assert list(CMLot.objects.filter(pk__in_ids=(str(lots[1].pk),))) == [lots[1]]  # keys as text are keys


@pytest.mark.req("FEAT-PERF-KEYLISTS")
def test_in_texts_finds_what_in_finds_for_text_keys(chain):
    """``__in_texts``: a generic relation's text ``object_id`` matched against a long list as ONE array on
    PostgreSQL (the investigations of a page of signed lots' results)."""
    from django.contrib.contenttypes.models import ContentType

    from cmlims.investigations.models import Investigation
    from cmlims.investigations.selectors import investigations_on
    from cmlims.investigations.services import investigation_open

    lots = [lot_at(chain, LotStatus.PACKAGED, vials=3) for _ in range(3)]
    for lot in lots[:2]:
        investigation_open(subject=lot, actor=chain.qc, kind="deviation", title=f"on {lot.lot_number}",
                           details="lookup test")
    wanted = [str(lots[0].pk), str(lots[2].pk), "999999999"]
    lot_type = ContentType.objects.get_for_model(CMLot)
    with CaptureQueriesContext(connection) as queries:
        found = list(Investigation.objects.filter(content_type=lot_type, object_id__in_texts=wanted))
    assert found == list(Investigation.objects.filter(content_type=lot_type, object_id__in=wanted))
    assert [i.object_id for i in found] == [str(lots[0].pk)]
    (sql,) = [q["sql"] for q in queries.captured_queries]
    assert ("= ANY(" in sql) if connection.vendor == "postgresql" else (" IN (" in sql)
    assert list(Investigation.objects.filter(object_id__in_texts=[])) == []
    assert [i.object_id for i in investigations_on([(CMLot, [lots[1].pk, lots[2].pk])])] == [str(lots[1].pk)]
