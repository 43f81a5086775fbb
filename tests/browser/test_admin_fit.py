"""Issue 17 items 3 (lists and forms that fit): in Chromium at 1280x800 on the seeded demo, the work lists (lots,
vials, shipments, results, investigations) and the change pages with inline rows (culture: passages and
harvests; lot: harvests pooled; freeze-drying run: phases; the one-page drying record) never scroll sideways:
neither the page nor any box inside it (Django's result table scrolls inside its own box, so the page's width
alone would not see it)."""

import time

import pytest
from django.core.management import call_command

from batches.models import CMLot, Culture, LyophilisationRun
from cmlims.demo import DEMO_PASSWORD
from tests.support.browser import axe_serious, login, screenshot, sideways_scrolling

pytestmark = pytest.mark.django_db(transaction=True)

WORK_LISTS = {
    "lots": "/admin/batches/cmlot/",
    "vials": "/admin/batches/vial/",
    "shipments": "/admin/shipping/shipment/",
    "results": "/admin/qc/qcresult/",
    "investigations": "/admin/investigations/investigation/",
}
# Who works from which list (each role sees its own action column and filters).
READERS = {"lab1": ("lots", "vials", "results", "investigations"), "qc1": tuple(WORK_LISTS),
           "ship1": ("lots", "vials", "shipments")}


@pytest.fixture
def demo():
    started = time.monotonic()
    call_command("seed_demo", verbosity=0)
    return time.monotonic() - started


@pytest.mark.req("FEAT-ADM-LISTS", "FEAT-ADM-FIT", via="browser")
def test_the_work_lists_fit_1280_px_for_each_role(demo, page):
    too_wide = {}
    for username, lists in READERS.items():
        login(page, username, DEMO_PASSWORD)
        for name in lists:
            page.goto(WORK_LISTS[name])
            rows = page.locator("#result_list tbody tr")
            assert rows.count() >= 1, f"{username}: the {name} list is empty; nothing was measured"
            if found := sideways_scrolling(page):
                too_wide[f"{username} on {name}"] = found
            screenshot(page, f"list-{name}-{username}")
        page.context.clear_cookies()
    assert too_wide == {}


@pytest.mark.req("FEAT-ADM-FIT", "FEAT-ADM-DRYINGPAGE", via="browser")
def test_change_pages_with_inline_rows_fit_1280_px(demo, page):
    culture = Culture.objects.filter(passages__isnull=False, harvests__isnull=False).order_by("pk").first()
    lot = CMLot.objects.filter(contributions__isnull=False).order_by("pk").first()
    run = LyophilisationRun.objects.filter(phases__isnull=False).order_by("pk").first()
    pages = {
        "culture": (f"/admin/batches/culture/{culture.pk}/change/", ".inline-group .tabular tbody tr.has_original"),
        "lot": (f"/admin/batches/cmlot/{lot.pk}/change/", ".inline-group .tabular tbody tr.has_original"),
        "drying-run": (f"/admin/batches/lyophilisationrun/{run.pk}/change/",
                       ".inline-group .tabular tbody tr.has_original"),
        "drying-record": ("/admin/batches/lyophilisationrun/record/", "table.cm-phases tbody tr.cm-phase"),
    }
    login(page, "lab1", DEMO_PASSWORD)
    too_wide = {}
    for name, (url, rows) in pages.items():
        page.goto(url)
        assert page.locator(rows).count() >= 1, f"{name}: no inline rows on the page; nothing was measured"
        if found := sideways_scrolling(page):
            too_wide[name] = found
        screenshot(page, f"change-{name}", full_page=True)
    assert too_wide == {}
    # The one-page drying record is a new page: it passes axe too.
    page.goto(pages["drying-record"][0])
    assert axe_serious(page) == []
