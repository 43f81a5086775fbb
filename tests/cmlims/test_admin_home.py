"""The start page at /admin/: per role, every count a link to the filtered changelist, in a number of
queries that does not grow with the data."""

import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from batches.models import LotStatus
from cmlims import roles
from cmlims.home import home_section_add, home_section_remove, home_sections
from tests.support.builders import lot_at, make_harvest, make_world
from tests.support.queries import admin_request_reads

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


def counts(html: str) -> dict[str, tuple[int, str]]:
    """{row label: (count, link)} from the rendered start page."""
    found = {}
    for href, count, label in re.findall(
            r'<td class="count"><a href="([^"]+)" aria-label="[^"]*">(\d+)</a></td>\s*<td>([^<]+)', html):
        found[label.strip()] = (int(count), href.replace("&amp;", "&"))
    return found


def test_site_header_names_cmlims_and_the_site(client, lab1, settings):
    settings.CMLIMS_SITE_NAME = "Lab Nord"
    client.force_login(lab1)
    page = client.get(INDEX).content.decode()
    assert "cmlims · Lab Nord" in page and "Django administration" not in page


@pytest.mark.req("FEAT-ADMINHOME-START")
def test_lab_start_page_counts_lots_by_stage_and_steps_waiting_for_someone_else(client, chain, spec,
                                                                                 make_user):
    pooled = lot_at(chain, LotStatus.POOLED)
    lot_at(chain, LotStatus.FREEZE_DRYING)
    lab3 = make_user("lab3", roles.LAB_STAFF, is_staff=True)
    client.force_login(lab3)
    found = counts(client.get(INDEX).content.decode())
    assert found["lots pooled"][0] == 1 and found["lots freeze-drying"][0] == 1
    assert "status__exact=pooled" in found["lots pooled"][1]
    # lab1 performed the pooling of both lots; lab2 verified the first (builders): lab3 may verify one.
    assert found["lot pooling steps"][0] == CountOf.unverified_pools()
    # The link opens the lot list filtered to what was counted.
    listed = client.get(found["lots pooled"][1])
    assert listed.status_code == 200 and pooled.lot_number in listed.content.decode()
    # The performer never sees their own steps as waiting for verification.
    client.force_login(chain.lab1)
    assert "lot pooling steps" not in counts(client.get(INDEX).content.decode())


class CountOf:
    @staticmethod
    def unverified_pools() -> int:
        from batches.models import CMLot

        return CMLot.objects.filter(pool_verified_by__isnull=True).count()


@pytest.mark.req("FEAT-ADMINHOME-START")
def test_qc_start_page_buckets_lots_and_never_offers_own_results(client, chain, spec, qc2):
    from tests.support.builders import enter

    packaged = lot_at(chain, LotStatus.PACKAGED)
    enter(packaged, "VEGF", "600", "pg/mL", analyst=chain.lab1, actor=qc2)
    client.force_login(chain.qc)
    found = counts(client.get(INDEX).content.decode())
    assert found["lots waiting for result approval"][0] == 1
    assert found["results waiting for your approval"][0] == 1
    assert found[f"{packaged.lot_number} (packaged (quarantine))"][0] >= 1
    qc2.is_staff = True
    qc2.save()
    client.force_login(qc2)  # entered it: not theirs to approve
    assert counts(client.get(INDEX).content.decode())["results waiting for your approval"][0] == 0
    link = found["results waiting for your approval"][1]
    assert client.get(link).status_code == 200


@pytest.mark.req("FEAT-ADMINHOME-START")
def test_shipping_start_page_lists_stock_first_expiry_first(client, make_user):
    import datetime as dt

    from django.utils import timezone

    coordinator = make_user("ship1", roles.SHIPPING_COORDINATOR, is_staff=True)
    world = make_world(coordinator=coordinator)
    later = world.lot(vials=3, expiry=timezone.localdate() + dt.timedelta(days=300))
    sooner = world.lot(vials=2, expiry=timezone.localdate() + dt.timedelta(days=100))
    client.force_login(coordinator)
    page = client.get(INDEX).content.decode()
    found = counts(page)
    first, second = (f"{world.product.name} · lot {lot.lot_number}" for lot in (sooner, later))
    assert found[first][0] == 2 and found[second][0] == 3
    assert page.index(first) < page.index(second)  # FEFO
    assert found["shipments draft"][0] == 0 and "receipts on hold (temperature excursion)" in found
    assert sooner.vials.first().serial in client.get(found[first][1]).content.decode()


def test_superuser_sees_the_lists_only(client, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(INDEX).content.decode()
    assert 'class="cmlims-home"' not in page and reverse("admin:batches_cmlot_changelist") in page


@pytest.mark.req("FEAT-ADMINHOME-START")
def test_start_page_queries_do_not_grow_with_the_data(client, chain, spec, make_user, django_assert_num_queries):
    both = make_user("lab-qc", roles.LAB_STAFF, is_staff=True)
    both.groups.add(*Group.objects.filter(name__in=[roles.QC_OFFICER, roles.SHIPPING_COORDINATOR]))
    lot_at(chain, LotStatus.POOLED)
    client.force_login(both)
    client.get(INDEX)
    with CaptureQueriesContext(connection) as few:
        client.get(INDEX)
    for status in (LotStatus.POOLED, LotStatus.FREEZE_DRYING, LotStatus.PACKAGED, LotStatus.PACKAGED):
        lot_at(chain, status)
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(INDEX)
    assert len(counts(page.content.decode())) >= 10


@pytest.mark.req("FEAT-ADMINHOME-START", "FEAT-PERF-ADMIN")
def test_lab_start_page_is_four_queries_of_its_own_whatever_the_data(client, chain, spec, make_user,
                                                                    django_assert_num_queries):
    from batches.models import CellBank, Culture, Harvest, LyophilisationRun, PackagingRun, Passage

    lab3 = make_user("lab3", roles.LAB_STAFF, is_staff=True)
    lot_at(chain, LotStatus.POOLED)
    client.force_login(lab3)
    client.get(INDEX)
    # The fixed reads (session, user with its roles, permissions: 1 or 2 queries), then the page's own four: the
    # lots in progress per stage with those on hold (one aggregate), the newest lots shown (with product and
    # drying run), every kind of step waiting for a verification (ONE query: the lot steps as filtered counts
    # over the lots, the six other kinds as scalar subqueries beside them), the open deviations. 15 before.
    with django_assert_num_queries(admin_request_reads() + 4):
        client.get(INDEX)
    for status in (LotStatus.POOLED, LotStatus.FREEZE_DRYING, LotStatus.PACKAGED):
        lot_at(chain, status)
    make_harvest(chain.lab1, chain.culture, days_ago=1)  # performed by lab1, not verified
    with django_assert_num_queries(admin_request_reads() + 4):
        found = counts(client.get(INDEX).content.decode())
    waiting = {model: model.objects.filter(performed_by__isnull=False, verified_by__isnull=True,
                                           voided_at__isnull=True).exclude(performed_by=lab3).count()
               for model in (CellBank, Culture, Passage, Harvest, LyophilisationRun, PackagingRun)}
    assert waiting[Harvest] >= 1 and found["harvests"][0] == waiting[Harvest]
    assert found["lots pooled"][0] == 2 and found["lots freeze-drying"][0] == 1
    assert found["lot pooling steps"][0] == CountOf.unverified_pools()
    for model, label in ((CellBank, "cell banks"), (Culture, "cultures"), (PackagingRun, "packaging runs")):
        assert found.get(label, (0,))[0] == waiting[model]
    client.force_login(chain.lab1)  # performed that harvest: it is not theirs to verify
    own = counts(client.get(INDEX).content.decode())
    assert own.get("harvests", (0,))[0] == waiting[Harvest] - 1


def test_a_section_is_one_registry_entry(client, lab1):
    from cmlims.home import HomeRow

    before = len(home_sections())
    home_section_add(key="test-extra", title="Extra for the test", roles=[roles.LAB_STAFF],
                     rows=lambda user: [HomeRow(label="extra things", count=3, changelist="batches.cmlot")])
    try:
        client.force_login(lab1)
        assert counts(client.get(INDEX).content.decode())["extra things"][0] == 3
        assert len(home_sections()) == before + 1
    finally:
        home_section_remove("test-extra")


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_the_app_list_is_built_only_where_it_is_shown(client, lab1):
    from django.utils.functional import empty

    client.force_login(lab1)
    listing = client.get("/admin/batches/cmlot/")
    assert listing.status_code == 200
    assert listing.context["available_apps"]._wrapped is empty  # the side menu is off: nothing built it
    start = client.get(INDEX)
    assert start.context["app_list"] is start.context["available_apps"]  # built once for the start page
    assert reverse("admin:batches_cmlot_changelist") in start.content.decode()
