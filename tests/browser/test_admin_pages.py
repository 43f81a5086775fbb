"""The demo in headless Chromium at 1280x800: each role's start page and every demo lot's sign-off page,
without JavaScript or console errors and without serious or critical accessibility violations; the sign-off
page fits 1,280 px wide and 3,200 px tall before "show full trail"."""

import time

import pytest
from django.core.management import call_command

from batches.models import CMLot
from cmlims.demo import DEMO_PASSWORD
from tests.support.browser import axe_serious, login, rendered_size, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

MAX_WIDTH, MAX_HEIGHT = 1280, 3200
ROLES = {"lab1": "Lots in progress", "qc1": "Lots in QC", "ship1": "Released stock, first expiry first"}


@pytest.fixture
def demo():
    started = time.monotonic()
    call_command("seed_demo", verbosity=0)
    return time.monotonic() - started


@pytest.mark.req("FEAT-ADMINHOME-BROWSER", "FEAT-ADMINHOME-START", via="browser")
def test_each_role_lands_on_its_start_page(demo, page):
    for username, first_section in ROLES.items():
        login(page, username, DEMO_PASSWORD)
        assert page.locator("#site-name").text_content().strip().startswith("cmlims")
        assert page.locator(".cmlims-home caption").first.text_content() == first_section
        counts = page.locator(".cmlims-home td.count a")
        assert counts.count() >= 3
        width, _ = rendered_size(page)
        assert width <= MAX_WIDTH
        assert axe_serious(page) == []
        screenshot(page, f"start-{username}")
        # Every count is a link to a list that opens.
        href = counts.first.get_attribute("href")
        assert page.request.get(href).status == 200
        page.context.clear_cookies()


@pytest.mark.req("FEAT-ADMINHOME-BROWSER", "FEAT-ADMINHOME-REVIEW", via="browser")
def test_every_demo_lots_signoff_page_fits_two_screens_and_passes_axe(demo, page):
    login(page, "qc1", DEMO_PASSWORD)
    lots = list(CMLot.objects.order_by("lot_number").values_list("lot_number", flat=True))
    assert len(lots) >= 5
    sizes = {}
    for number in lots:
        page.goto(f"/admin/qc/qcresult/signoff/{number}/")
        assert page.locator("h1").text_content() == f"Sign-off: lot {number}"
        sizes[number] = rendered_size(page)
        assert axe_serious(page) == [], number
        screenshot(page, f"signoff-{number}", full_page=True)
    too_big = {n: s for n, s in sizes.items() if s[0] > MAX_WIDTH or s[1] > MAX_HEIGHT}
    assert not too_big, f"larger than {MAX_WIDTH}x{MAX_HEIGHT}: {too_big}"
