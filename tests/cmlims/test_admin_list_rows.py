"""The list pages' per-row shortcuts give exactly what Django's own machinery gives (B2 of issue 14)."""

import copy

import pytest
from django import forms
from django.contrib.admin import helpers
from django.contrib.admin.sites import site
from django.core.paginator import Paginator
from django.urls import reverse
from django.utils.html import format_html

from batches.models import CMLot, LotStatus, Vial
from cmlims.admin import url_for_each
from cmlims.admin_paging import CappedCountPaginator, IdsFirstPaginator
from cmlims.audit import audited_bulk_create
from cmlims.documents.models import LabelPrint
from qc.models import QCResult
from tests.support.builders import lot_at
from tests.support.queries import admin_request_reads

pytestmark = pytest.mark.django_db


def test_action_checkbox_is_the_stock_widget_markup(chain):
    lot = lot_at(chain, LotStatus.PACKAGED)
    lot.lot_number = 'CM<"&\'>-1'  # text that must be escaped in the attribute
    stock = forms.CheckboxInput({"class": "action-select", "aria-label": format_html(
        "Select this object for an action - {}", str(lot))}, lambda value: False)
    assert site._registry[CMLot].action_checkbox(lot) == stock.render(helpers.ACTION_CHECKBOX_NAME, str(lot.pk))


@pytest.mark.parametrize(("viewname", "fixed", "values"), [
    ("admin:batches_cmlot_genealogy", [], [1, 42, 1234567]),
    ("admin:batches_cmlot_change", [], [7, "a b/c?d#e%f_g", "ü-ß"]),
    ("admin:qc_lot_signoff", [], ["CM26-0001", "CM 26-0002 ü"]),
    ("admin:cmlims_timeline", ["batches.cmlot"], [3, 81518315]),
])
def test_url_for_each_is_reverse(viewname, fixed, values):
    url_of = url_for_each(viewname, *fixed)
    for value in values:
        assert url_of(value) == reverse(viewname, args=[*fixed, value])


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_lot_list_first_and_last_page_run_the_same_queries(chain, client, django_assert_num_queries):
    client.force_login(chain.lab1)
    lots = [lot_at(chain, LotStatus.PACKAGED) for _ in range(3)]
    url = "/admin/batches/cmlot/?status__exact=packaged"
    client.get(url)  # warms the process-wide ContentType cache
    # The fixed reads (session, user with its roles, permissions), then the list's own: the products of the
    # filter, the page read one row long (3 lots fit on one page: nothing is counted), its sign-offs.
    with django_assert_num_queries(admin_request_reads() + 3):
        page = client.get(url).content.decode()
    assert page.count('class="action-select"') == 3 and "3 CM lots" in page
    clones = [copy.copy(lots[0]) for _ in range(120)]  # 120 more packaged lots: three pages of 50
    for n, clone in enumerate(clones):
        clone.pk, clone.lot_number = None, f"CM99-{n:04d}"
    audited_bulk_create(CMLot, clones, actor=chain.lab1, clean=False)
    # More than a page: the first page's read finds the 51st row, so the COUNT(*) follows (4 of the list's own).
    with django_assert_num_queries(admin_request_reads() + 4) as first:
        page = client.get(url).content.decode()
    assert page.count('class="action-select"') == 50 and "123 CM lots" in page
    with django_assert_num_queries(len(first.captured_queries)):  # the last page: COUNT(*), then its rows
        page = client.get(url + "&p=3").content.decode()
    assert page.count('class="action-select"') == 23 and page.count("genealogy</a>") == 23


class EveryPageDeep(IdsFirstPaginator):
    deep_rows = 0  # every page by ids first, so a handful of rows shows what a deep page does


@pytest.mark.req("FEAT-PERF-PAGING")
def test_a_deep_page_read_by_its_ids_shows_the_plain_pages_rows_in_order(chain, django_assert_num_queries):
    lots = [lot_at(chain, status) for status in (LotStatus.PACKAGED, LotStatus.POOLED, LotStatus.PACKAGED,
                                                 LotStatus.PACKAGED, LotStatus.POOLED, LotStatus.PACKAGED)]
    listed = CMLot.objects.filter(status=LotStatus.PACKAGED).select_related("product").order_by("-created_at", "-id")
    plain, deep = Paginator(listed, 3, orphans=0), EveryPageDeep(listed, 3, orphans=0)
    assert deep.num_pages == plain.num_pages == 2
    for number in (1, 2):
        with django_assert_num_queries(1):
            expected = [(lot.pk, lot.product.name) for lot in plain.page(number)]
        with django_assert_num_queries(2):  # the page's ids, then its rows (the product joined as before)
            shown = [(lot.pk, lot.product.name) for lot in deep.page(number)]
        assert shown == expected
    assert {pk for pk, _ in expected} <= {lot.pk for lot in lots}
    assert list(IdsFirstPaginator(listed, 3).page(2).object_list) == list(plain.page(2).object_list)  # shallow


@pytest.mark.req("FEAT-PERF-PAGING")
def test_the_admin_lists_page_deep_tables_by_ids_first():
    from cmlims.models import AuditEntry

    assert site._registry[CMLot].paginator is IdsFirstPaginator
    for model in (AuditEntry, Vial, QCResult, LabelPrint):  # the biggest tables: ids first, counted up to a cap
        assert issubclass(site._registry[model].paginator, CappedCountPaginator), model


@pytest.mark.req("FEAT-PERF-ADMIN")
def test_lot_search_by_vial_serial_is_counted_by_nobody_whatever_the_data(chain, client, django_assert_num_queries):
    """B2c: the serial's lot by its unique index, then its one row read without a COUNT(*), at two data sizes."""
    client.force_login(chain.lab1)
    lot = lot_at(chain, LotStatus.PACKAGED)
    serial = lot.vials.order_by("sequence").values_list("serial", flat=True).first()
    url = f"/admin/batches/cmlot/?q={serial}"
    client.get(url)  # warms the process-wide ContentType cache
    # The fixed reads, then: the serial's lot id, the products of the filter, the page (one row), its sign-offs.
    with django_assert_num_queries(admin_request_reads() + 4) as one:
        page = client.get(url).content.decode()
    assert lot.lot_number in page and page.count('class="action-select"') == 1
    assert not [q for q in one.captured_queries if q["sql"].startswith("SELECT COUNT(*)")]
    clones = [copy.copy(lot) for _ in range(120)]  # 120 more lots: the list spans three pages
    for n, clone in enumerate(clones):
        clone.pk, clone.lot_number = None, f"CM98-{n:04d}"
    audited_bulk_create(CMLot, clones, actor=chain.lab1, clean=False)
    with django_assert_num_queries(len(one.captured_queries)):
        page = client.get(url).content.decode()
    assert lot.lot_number in page and page.count('class="action-select"') == 1
