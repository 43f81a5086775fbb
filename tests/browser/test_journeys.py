"""The three journeys of issue 17 in headless Chromium at 1280x800, against the live server (a thread on the
test database) and a real Celery worker (documents and labels are built by it, not in the test):

1. the lab records a new lot from an existing cell bank, a second person verifies each step from their start
   page, and the genealogy shows it all;
2. QC imports results, handles an out-of-specification result (investigation, retest), reviews the audit
   trail by exception, signs the release, and downloads the certificate of analysis built by the worker;
3. the shipping coordinator builds a shipment first-expiry-first-out by scanning vial labels, prints the
   labels, hands it to the courier and uploads the logger file.

Each journey asserts what the person sees (messages, statuses, names, counts), and the ``page`` fixture fails
on any console or JavaScript error. Steps are small helpers so they can follow the admin as it changes.
Time matters to the lab (conditioning lasts 48–72 h): journey 1 runs on a time-machine clock that starts ten
days back and moves forward step by step (the live server is a thread of this process, so it shares the
clock; Chromium's cookies use Max-Age, so they do not care). It ends before the real "now", where the
worker's clock is.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from batches.models import CMLot, Culture, LotStatus
from batches.services import records
from cmlims import roles
from tests.support import builders
from tests.support.browser import axe_serious, login, rendered_size, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker_process")]

D = Decimal
PASSWORD = builders.PASSWORD
PEOPLE = {  # username: (role, first name, last name)
    "lab1": (roles.LAB_STAFF, "Amara", "Okafor"),
    "lab2": (roles.LAB_STAFF, "Jonas", "Lindqvist"),
    "qc1": (roles.QC_OFFICER, "Priya", "Raman"),
    "qc2": (roles.QC_OFFICER, "Tomás", "Herrera"),
    "ship1": (roles.SHIPPING_COORDINATOR, "Mei", "Tanaka"),
}
JOB_WAIT_MS = 120_000  # a document job on a loaded 2-core machine


def people(*usernames: str) -> dict:
    return {name: builders.make_user(name, PEOPLE[name][0], is_staff=True, first_name=PEOPLE[name][1],
                                     last_name=PEOPLE[name][2]) for name in usernames}


def printed(username: str) -> str:
    return f"{PEOPLE[username][1]} {PEOPLE[username][2]}"


# --- what every step uses ---------------------------------------------------------------------------------


def as_user(page, username: str) -> None:
    """Log out whoever was logged in and log in ``username``: they land on their start page."""
    page.context.clear_cookies()
    login(page, username, PASSWORD)
    assert page.locator("#site-name").text_content().strip().startswith("cmlims")


def later(page, clock, delta: dt.timedelta, username: str) -> None:
    """Time passes in the lab (the session ends after 30 idle minutes): ``username`` logs in again."""
    clock.shift(delta)
    as_user(page, username)


def success(page) -> str:
    """The success messages on the page (fails, naming the errors shown, when there is none)."""
    shown = page.locator(".messagelist li.success")
    if shown.count() == 0:
        errors = page.locator(".messagelist li.error, .errornote, .errorlist li").all_text_contents()
        raise AssertionError(f"no success message on {page.url}; errors shown: {errors}")
    return " ".join(shown.all_text_contents())


def set_datetime(page, field: str, when: dt.datetime) -> None:
    """Fill a split admin date/time field (``id_<field>_0`` / ``_1``) in the site's zone (UTC in tests)."""
    local = timezone.localtime(when)
    page.fill(f"#id_{field}_0", local.strftime("%Y-%m-%d"))
    page.fill(f"#id_{field}_1", local.strftime("%H:%M:%S"))


def choose(page, field: str, text: str) -> None:
    """Pick ``text`` in an autocomplete (select2) field, typing as a person would."""
    page.locator(f"#id_{field} + .select2 .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(text)
    option = page.locator(".select2-results__option:not(.loading-results)", has_text=text).first
    option.wait_for()
    option.click()


def save(page, button: str = "_save") -> None:
    page.click(f"input[name={button}]")
    page.wait_for_load_state()


def run_action(page, action: str, *row_texts: str) -> None:
    """On a change list: tick the rows whose text contains each of ``row_texts`` (all rows when none) and run
    the action."""
    if row_texts:
        for text in row_texts:
            page.locator("#result_list tbody tr", has_text=text).locator("input.action-select").check()
    else:
        page.check("#action-toggle")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()


def start_page_count(page, section: str, label: str) -> int:
    """The count shown on the start page in ``section`` for the row whose label starts with ``label``."""
    row = start_page_row(page, section, label)
    return int(row.locator("td.count").text_content().strip())


def start_page_row(page, section: str, label: str):
    table = page.locator(".cmlims-home table", has=page.locator("caption", has_text=section))
    return table.locator("tr", has=page.locator("th, td", has_text=re.compile(rf"^\s*{re.escape(label)}"))).first


def open_from_start_page(page, section: str, label: str) -> None:
    start_page_row(page, section, label).locator("td.count a").click()
    page.wait_for_load_state()


def wait_for_job(page) -> str:
    """On a document job's page (it reloads itself every 2 s until the job ends): the progress bar is shown
    while the worker builds it; returns the download link's text once done."""
    assert page.locator(".field-progress_display progress").count() == 1
    link = page.locator(".field-download_link a")
    link.wait_for(timeout=JOB_WAIT_MS)
    assert page.locator(".field-progress_display progress").get_attribute("value") == "100"
    return link.text_content().strip()


def download_bytes(page, selector: str) -> tuple[str, bytes]:
    """Click a download link; (the file's suggested name, its content)."""
    with page.expect_download() as info:
        page.click(selector)
    done = info.value
    return done.suggested_filename, open(done.path(), "rb").read()


# --- journey 1: the lab records a lot --------------------------------------------------------------------


def lab_master_data(lab1, lab2) -> dict:
    """What exists before the journey: the product, a freezer, an eligible donor and its master cell bank
    (verified long ago)."""
    product = builders.make_product(lab1)
    location = builders.StorageLocationFactory(actor=lab1)
    source = builders.make_donor(lab1, "DN-0417")
    bank = records.step_verify(record=builders.make_bank(lab1, source, "MCB-0417"), actor=lab2)
    return {"product": product, "location": location, "source": source, "bank": bank}


def culture_start(page, *, code: str, bank: str, product: str, started_at: dt.datetime) -> None:
    page.goto("/admin/batches/culture/add/")
    page.fill("#id_code", code)
    choose(page, "product", product)
    choose(page, "bank", bank)
    set_datetime(page, "started_at", started_at)
    page.fill("#id_vessel", "CellSTACK 5")
    page.fill("#id_medium_lot", "MED-2611")
    save(page, "_continue")
    assert "was added successfully" in success(page)


def culture_open(page, code: str) -> None:
    page.goto(f"/admin/batches/culture/?q={code}")
    page.locator("#result_list tbody tr th a", has_text=code).click()
    page.wait_for_load_state()


def passage_record(page, *, code: str, number: int, seeded_at: dt.datetime, harvested_at: dt.datetime,
                   cells_seeded: int, cells_harvested: int) -> None:
    """Fill the culture page's empty passage row and save."""
    culture_open(page, code)
    empty_row = page.locator("input[name$='-passage_number']:not([name*='__prefix__'])").last
    prefix = empty_row.get_attribute("name").rsplit("-", 1)[0]
    page.fill(f"[name='{prefix}-passage_number']", str(number))
    for field, when in (("seeded_at", seeded_at), ("harvested_at", harvested_at)):
        local = timezone.localtime(when)
        page.fill(f"[name='{prefix}-{field}_0']", local.strftime("%Y-%m-%d"))
        page.fill(f"[name='{prefix}-{field}_1']", local.strftime("%H:%M:%S"))
    page.fill(f"[name='{prefix}-cells_seeded']", str(cells_seeded))
    page.fill(f"[name='{prefix}-cells_harvested']", str(cells_harvested))
    page.fill(f"[name='{prefix}-viability_percent']", "94.5")
    page.fill(f"[name='{prefix}-confluence_percent']", "85")
    save(page, "_continue")
    assert "was changed successfully" in success(page)


def culture_start_conditioning(page, code: str) -> None:
    page.goto(f"/admin/batches/culture/?q={code}")
    run_action(page, "start_conditioning", code)
    assert "Conditioning started: 1 record(s)." in success(page)


def harvest_record(page, *, culture: str, started: dt.datetime, ended: dt.datetime, volume: str) -> str:
    page.goto("/admin/batches/harvest/add/")
    choose(page, "culture", culture)
    set_datetime(page, "conditioning_started_at", started)
    set_datetime(page, "conditioning_ended_at", ended)
    page.fill("#id_volume_ml", volume)
    page.fill("#id_viability_percent", "92")
    page.fill("#id_hold_temperature_c", "4")
    save(page)
    message = success(page)
    assert "was added successfully" in message
    return message


def lot_pool(page, *, product: str, harvests: list[tuple[str, str]], pooled_at: dt.datetime) -> str:
    """The lot's add page: product, pooling time and the harvests with the volume taken from each."""
    page.goto("/admin/batches/cmlot/add/")
    choose(page, "product", product)
    set_datetime(page, "pooled_at", pooled_at)
    selects = page.locator("select[name$='-harvest']:not([name*='__prefix__'])")
    for i, (harvest, volume) in enumerate(harvests):
        name = selects.nth(i).get_attribute("name")
        prefix = name.rsplit("-", 1)[0]
        page.locator(f"[name='{name}'] + .select2 .select2-selection").click()
        page.locator(".select2-container--open .select2-search__field").fill(harvest.rsplit("-", 1)[0])
        option = page.locator(".select2-results__option:not(.loading-results)",
                              has_text=re.compile(rf"^{re.escape(harvest)}$")).first
        option.wait_for()
        option.click()
        page.fill(f"[name='{prefix}-volume_ml']", volume)
    save(page, "_continue")
    message = success(page)
    assert "was added successfully" in message
    return page.locator(".field-lot_number .readonly").text_content().strip()


def lot_open(page, lot_number: str) -> None:
    page.goto(f"/admin/batches/cmlot/?q={lot_number}")
    page.locator("#result_list tbody tr th a", has_text=lot_number).click()
    page.wait_for_load_state()


def lot_filtration_and_concentration(page, lot_number: str, *, filtered_at: dt.datetime,
                                     concentrated_at: dt.datetime, volume_in: str, volume_out: str) -> None:
    lot_open(page, lot_number)
    page.fill("#id_filter_pore_size_um", "0.22")
    page.fill("#id_filter_lot", "FLT-2611")
    set_datetime(page, "filtered_at", filtered_at)
    page.select_option("#id_integrity_test_method", "bubble_point")
    page.fill("#id_integrity_test_limit_bar", "3.2")
    page.fill("#id_integrity_test_measured_bar", "3.6")
    page.fill("#id_volume_filtered_ml", volume_in)
    page.fill("#id_concentration_cutoff_kda", "3")
    page.fill("#id_concentration_factor", "10")
    page.fill("#id_volume_out_ml", volume_out)
    set_datetime(page, "concentrated_at", concentrated_at)
    save(page, "_continue")
    assert "was changed successfully" in success(page)
    assert page.locator(".field-integrity_test_passed .readonly img[alt=True]").count() == 1


def drying_run_load(page, *, lot_number: str, run_number: str, vials: int, started_at: dt.datetime) -> None:
    page.goto("/admin/batches/lyophilisationrun/add/")
    page.fill("#id_run_number", run_number)
    choose(page, "lot", lot_number)
    page.fill("#id_dryer", "LYO-A")
    page.fill("#id_recipe", "CM-1ML")
    page.fill("#id_recipe_version", "3")
    page.fill("#id_vials_loaded", str(vials))
    page.fill("#id_fill_volume_ml", "0.9")
    set_datetime(page, "started_at", started_at)
    save(page, "_continue")
    assert "was added successfully" in success(page)


PHASES = [("freezing", "-45", "-44.6", "1000"), ("primary_drying", "-25", "-24.8", "0.1"),
          ("secondary_drying", "25", "24.9", "0.05")]


def drying_run_phases_and_completion(page, *, started_at: dt.datetime) -> None:
    """On the run's page: the three phases in the inline rows, then the completion fields, in one save."""
    for i, (phase, setpoint, actual, pressure) in enumerate(PHASES):
        prefix = f"phases-{i}"
        page.select_option(f"[name='{prefix}-phase']", phase)
        page.fill(f"[name='{prefix}-shelf_temperature_setpoint_c']", setpoint)
        page.fill(f"[name='{prefix}-shelf_temperature_actual_c']", actual)
        page.fill(f"[name='{prefix}-chamber_pressure_setpoint_mbar']", pressure)
        page.fill(f"[name='{prefix}-chamber_pressure_actual_mbar']", pressure)
        for field, when in (("started_at", started_at + dt.timedelta(hours=4 * i)),
                            ("ended_at", started_at + dt.timedelta(hours=4 * i + 4))):
            local = timezone.localtime(when)
            page.fill(f"[name='{prefix}-{field}_0']", local.strftime("%Y-%m-%d"))
            page.fill(f"[name='{prefix}-{field}_1']", local.strftime("%H:%M:%S"))
    end = started_at + dt.timedelta(hours=12)
    set_datetime(page, "ended_at", end)
    page.select_option("#id_end_of_primary_drying_method", "pressure_rise")
    set_datetime(page, "end_of_primary_drying_at", started_at + dt.timedelta(hours=8))
    page.fill("#id_end_of_primary_drying_evidence", "PRT < 0.01 mbar/min")
    page.select_option("#id_stoppering_method", "nitrogen")
    page.fill("#id_stoppering_pressure_mbar", "800")
    set_datetime(page, "stoppered_at", end)
    save(page, "_continue")
    assert "was changed successfully" in success(page)
    assert page.locator(".field-completed_by .readonly").text_content().strip() not in ("", "-", "—")


def packaging_record(page, *, lot_number: str, run_number: str, started: dt.datetime, ended: dt.datetime,
                     packaged: int, rejected: int, location: str) -> None:
    page.goto("/admin/batches/packagingrun/add/")
    page.fill("#id_run_number", run_number)
    choose(page, "lot", lot_number)
    set_datetime(page, "started_at", started)
    set_datetime(page, "ended_at", ended)
    page.fill("#id_vials_packaged", str(packaged))
    page.fill("#id_vials_rejected", str(rejected))
    choose(page, "storage_location", location)
    save(page)
    assert "was added successfully" in success(page)


def lot_status_shown(page, lot_number: str) -> str:
    page.goto(f"/admin/batches/cmlot/?q={lot_number}")
    return page.locator("#result_list tbody tr", has_text=lot_number).locator("td.field-status_shown") \
        .text_content().strip()


def lot_print_labels(page, lot_number: str, action: str) -> str:
    """Run a label action on the lot list and follow the queued job's link to its page; the download's name."""
    page.goto(f"/admin/batches/cmlot/?q={lot_number}")
    run_action(page, action, lot_number)
    message = success(page)
    assert "queued" in message, message
    page.locator(".messagelist li.success a", has_text="job").first.click()
    page.wait_for_load_state()
    return wait_for_job(page)


def lot_document(page, lot_number: str, action: str) -> tuple[str, bytes]:
    """A lot document: queued from the lot list, built by the worker while its job page shows the progress
    bar, then downloaded."""
    name = lot_print_labels(page, lot_number, action)
    screenshot(page, f"job-{action}")
    downloaded, content = download_bytes(page, ".field-download_link a")
    assert downloaded == name
    return name, content


def verify_from_start_page(page, label: str, action: str, *, count: int) -> None:
    """lab2 on their start page: the count of ``label`` waiting for them, its link, the verify action."""
    page.goto("/admin/")
    assert start_page_count(page, "Waiting for your verification", label) == count
    open_from_start_page(page, "Waiting for your verification", label)
    run_action(page, action)
    assert re.search(r"verified: \d+ record\(s\)\.", success(page), re.IGNORECASE)


@pytest.mark.req("FEAT-ADMINHOME-BROWSER", "FEAT-ADMINHOME-START", via="browser")
def test_journey_1_lab_records_a_lot_and_a_second_person_verifies_each_step(page):
    real_now = timezone.now()
    start = (real_now - dt.timedelta(days=10)).replace(hour=8, minute=0, second=0, microsecond=0)
    with time_machine.travel(start, tick=True) as clock:
        who = people("lab1", "lab2")
        data = lab_master_data(who["lab1"], who["lab2"])
        product, location = data["product"].name, data["location"].code

        # Day 0: the culture is started from the master bank; two passages over six days.
        as_user(page, "lab1")
        assert page.locator(".cmlims-home caption").first.text_content() == "Lots in progress"
        assert axe_serious(page) == []
        screenshot(page, "journey1-start-lab1")
        culture_start(page, code="CU-J1", bank="MCB-0417", product=product, started_at=start)
        later(page, clock, dt.timedelta(days=3), "lab1")
        passage_record(page, code="CU-J1", number=3, seeded_at=start + dt.timedelta(minutes=30),
                       harvested_at=start + dt.timedelta(days=3, minutes=-20), cells_seeded=5_000_000,
                       cells_harvested=40_000_000)
        later(page, clock, dt.timedelta(days=3), "lab1")
        passage_record(page, code="CU-J1", number=4, seeded_at=start + dt.timedelta(days=3),
                       harvested_at=start + dt.timedelta(days=6, minutes=-20), cells_seeded=8_000_000,
                       cells_harvested=60_000_000)
        culture_start_conditioning(page, "CU-J1")
        # The form takes whole seconds: the harvests count from the next second after the recorded start.
        conditioning = Culture.objects.get(code="CU-J1").conditioning_started_at.replace(microsecond=0) \
            + dt.timedelta(seconds=1)

        # Day 8: three harvests from the conditioning vessels (48–50 h of serum-free conditioning).
        later(page, clock, dt.timedelta(hours=50, minutes=30), "lab1")
        for hours, volume in ((48, "500"), (49, "480"), (50, "520")):
            harvest_record(page, culture="CU-J1", started=conditioning,
                           ended=conditioning + dt.timedelta(hours=hours), volume=volume)
        screenshot(page, "journey1-harvests")

        # lab2 verifies the culture, its passages and the harvests from the start page.
        as_user(page, "lab2")
        assert axe_serious(page) == []
        screenshot(page, "journey1-start-lab2-to-verify")
        verify_from_start_page(page, "cultures", "verify_selected", count=1)
        verify_from_start_page(page, "passages", "verify_passages", count=2)
        verify_from_start_page(page, "harvests", "verify_selected", count=3)

        # Pooling, filtration and concentration the same day.
        later(page, clock, dt.timedelta(minutes=20), "lab1")
        lot_number = lot_pool(page, product=product, pooled_at=timezone.now() - dt.timedelta(minutes=5),
                              harvests=[("CU-J1-H1", "500"), ("CU-J1-H2", "480"), ("CU-J1-H3", "520")])
        later(page, clock, dt.timedelta(minutes=25), "lab1")
        now = timezone.now()
        lot_filtration_and_concentration(page, lot_number, filtered_at=now - dt.timedelta(minutes=15),
                                         concentrated_at=now - dt.timedelta(minutes=5), volume_in="1500",
                                         volume_out="149")
        assert start_page_count_for(page, lot_number) == 3  # three lot steps not yet verified

        as_user(page, "lab2")
        for step in ("pooling", "filtration", "concentration"):
            verify_from_start_page(page, f"lot {step} steps", f"verify_{step}", count=1)

        # Freeze-drying: load the dryer (the lot moves to freeze-drying), three phases, completion.
        later(page, clock, dt.timedelta(minutes=20), "lab1")
        loaded = timezone.now() - dt.timedelta(minutes=5)
        drying_run_load(page, lot_number=lot_number, run_number=f"LYO-{lot_number}", vials=150, started_at=loaded)
        assert "Freeze-drying" in lot_status_shown(page, lot_number) or "freeze" in \
            lot_status_shown(page, lot_number).lower()
        later(page, clock, dt.timedelta(hours=13), "lab1")
        page.goto("/admin/batches/lyophilisationrun/")
        page.locator("#result_list tbody tr th a", has_text=f"LYO-{lot_number}").click()
        page.wait_for_load_state()
        drying_run_phases_and_completion(page, started_at=loaded)
        screenshot(page, "journey1-drying-run", full_page=True)

        as_user(page, "lab2")
        verify_from_start_page(page, "freeze-drying runs", "verify_selected", count=1)

        # Packaging into vials (the lot is packaged, in quarantine), then the quarantine labels.
        later(page, clock, dt.timedelta(hours=2), "lab1")
        now = timezone.now()
        packaging_record(page, lot_number=lot_number, run_number=f"PKG-{lot_number}",
                         started=now - dt.timedelta(minutes=100), ended=now - dt.timedelta(minutes=10), packaged=146,
                         rejected=4, location=location)
        assert "packaged" in lot_status_shown(page, lot_number).lower()

        as_user(page, "lab2")
        verify_from_start_page(page, "packaging runs", "verify_selected", count=1)
        page.goto("/admin/")
        assert page.locator("#home-lab-verify td.empty").text_content().strip() == \
            "No step waits for your verification."

        as_user(page, "lab1")
        labels, pdf = lot_document(page, lot_number, "documents_print_quarantine_labels")
        assert labels.endswith(".pdf") and pdf.startswith(b"%PDF"), labels

        # The genealogy: donor → bank → culture → harvests → lot → drying run → packaging.
        page.goto(f"/admin/batches/cmlot/?q={lot_number}")
        page.locator("#result_list tbody tr", has_text=lot_number).locator("a", has_text="genealogy").click()
        page.wait_for_load_state()
        assert page.locator("h1").text_content().strip() == f"Genealogy of lot {lot_number}"
        body = page.locator("#content-main").text_content()
        for expected in ("DN-0417", "MCB-0417", "CU-J1", "CU-J1-H1", "CU-J1-H2", "CU-J1-H3", f"LYO-{lot_number}",
                         f"PKG-{lot_number}", "146 packaged", printed("lab1"), printed("lab2")):
            assert expected in body, expected
        screenshot(page, "journey1-genealogy", full_page=True)
        assert rendered_size(page)[0] <= 1280

    lot = CMLot.objects.get(lot_number=lot_number)
    assert lot.status == LotStatus.PACKAGED and lot.vials.count() == 146


def start_page_count_for(page, lot_number: str) -> int:
    """The number of blockers lab staff's start page shows for ``lot_number``."""
    page.goto("/admin/")
    return start_page_count(page, "Lots in progress", lot_number)


# --- journey 2: QC from results to release -----------------------------------------------------------------

OOS_TEST, OOS_VALUE, RETEST_VALUE = "Bacterial endotoxin", "14.0", "0.6"


def results_csv(lot_number: str, analyst: str, tested_at: dt.datetime) -> bytes:
    """The instrument system's export: every panel test, endotoxin out of specification."""
    rows = ["lot_number,test,value,unit,analyst,tested_at,instrument"]
    for test, (value, unit) in builders.PASSING.items():
        value = OOS_VALUE if test == OOS_TEST else value
        rows.append(f"{lot_number},{test},{value},{unit},{analyst},{tested_at.isoformat()},INS-7")
    return ("\n".join(rows) + "\n").encode()


def results_import(page, csv: bytes) -> str:
    page.goto("/admin/qc/qcresult/")
    page.click("a[href$='/admin/qc/qcresult/import/']")
    page.set_input_files("#id_file", files=[{"name": "results.csv", "mimeType": "text/csv", "buffer": csv}])
    page.click("#content-main input[type=submit]")
    page.wait_for_load_state()
    return success(page)


def sign(page, username: str, *, reason: str = "") -> None:
    """The two signature components on a signing page (QC's pages prefill the user's own name)."""
    if page.locator("#id_username").input_value() == "":
        page.fill("#id_username", username)
    assert page.locator("#id_username").input_value() == username
    page.fill("#id_password", PASSWORD)
    if reason:
        page.fill("#id_reason", reason)


def results_approve_from_start_page(page, username: str, *, count: int) -> None:
    """qc2 on the start page: the results waiting for their approval, each approved on its signing page."""
    page.goto("/admin/")
    assert start_page_count(page, "Results to approve", "results waiting for your approval") == count
    open_from_start_page(page, "Results to approve", "results waiting for your approval")
    links = [a.get_attribute("href") for a in page.locator("#result_list tbody tr th a").all()]
    assert len(links) == count
    for href in links:
        page.goto(href)
        page.locator(".field-actions_links a", has_text="approve (signature)").click()
        page.wait_for_load_state()
        sign(page, username)
        page.click("#content-main input[type=submit]")
        page.wait_for_load_state()
        assert re.match(r"Result \d+ approved\.", success(page))
    page.goto("/admin/")
    assert start_page_count(page, "Results to approve", "results waiting for your approval") == 0


def result_open(page, lot_number: str, test: str, value: str) -> None:
    page.goto(f"/admin/qc/qcresult/?q={lot_number}")
    page.locator("#result_list tbody tr", has_text=test).filter(has_text=value).locator("th a").click()
    page.wait_for_load_state()


def retest_enter(page, *, lot_number: str, analyst_id: int, tested_at: dt.datetime) -> None:
    """lab2 opens the failed result, follows "enter a retest" (lot, test and link filled in) and records it."""
    result_open(page, lot_number, OOS_TEST, OOS_VALUE)
    page.locator(".field-actions_links a", has_text="enter a retest").click()
    page.wait_for_load_state()
    assert page.locator("#id_retest_of_result").input_value() != ""
    page.fill("#id_value_entered", RETEST_VALUE)
    page.select_option("#id_analyst", str(analyst_id))
    set_datetime(page, "tested_at", tested_at)
    save(page)
    assert "was added successfully" in success(page)


def investigation_close_citing(page, *, lot_number: str, retest: str) -> str:
    """qc1: from the start page's open investigations to the OOS investigation, closed with its conclusion."""
    page.goto("/admin/")
    open_from_start_page(page, "Open investigations by age", "")
    page.locator("#result_list tbody tr", has_text=lot_number).locator("th a").click()
    page.wait_for_load_state()
    number = page.locator("h2, .field-title .readonly").first.text_content()
    page.fill("#id_root_cause", "Laboratory error: endotoxin-contaminated pipette tips (lot TIP-88)")
    page.fill("#id_related_lots_checked", "No other lot was tested with tip lot TIP-88")
    page.fill("#id_conclusion", f"Invalid original result; {retest} (retest, approved) counts. Lot conforms.")
    page.select_option("#id_product_disposition", "usable")
    page.check("#id_close")
    # Closing an OOS investigation is qc1's Part 11 signature (qc1 entered, approved and retested none of it).
    page.fill("#id_username", "qc1")
    page.fill("#id_password", builders.PASSWORD)
    save(page)
    assert "was changed successfully" in success(page)
    return number


def lot_move(page, lot_number: str, action: str) -> str:
    page.goto(f"/admin/batches/cmlot/?q={lot_number}")
    run_action(page, action, lot_number)
    return success(page)


def signoff_open_from_start_page(page, lot_number: str) -> None:
    page.goto("/admin/")
    assert start_page_count(page, "Lots in QC", "lots waiting for sign-off") == 1
    open_from_start_page(page, "Lots in QC", "lots waiting for sign-off")
    page.locator("#result_list tbody tr", has_text=lot_number).locator("a", has_text="sign-off").click()
    page.wait_for_load_state()
    assert page.locator("h1").text_content() == f"Sign-off: lot {lot_number}"


def signoff_release(page, username: str, reason: str) -> str:
    page.check("#id_confirm_review")
    page.check("input[name=action][value=released]")
    sign(page, username, reason=reason)
    page.click("#sign input[type=submit], form input[type=submit][value*=Sign]")
    page.wait_for_load_state()
    return success(page)


@pytest.mark.req("FEAT-ADMINHOME-BROWSER", "FEAT-ADMINHOME-REVIEW", via="browser")
def test_journey_2_qc_imports_results_handles_an_oos_and_signs_the_release(page):
    who = people("lab1", "lab2", "qc1", "qc2")
    chain = builders.make_chain(lab1=who["lab1"], lab2=who["lab2"], qc=who["qc1"])
    builders.sign_spec(who["qc2"], chain.product)
    lot = builders.lot_at(chain, LotStatus.PACKAGED)
    number = lot.lot_number
    tested = timezone.now() - dt.timedelta(hours=1)

    as_user(page, "lab2")
    message = results_import(page, results_csv(number, "lab2", tested))
    assert message.startswith(f"{len(builders.PASSING)} results imported; the file is kept as ")
    row = page.locator("#result_list tbody tr", has_text=OOS_TEST)
    assert "fail" in row.locator("td.field-verdict").text_content().lower()
    screenshot(page, "journey2-results-imported")

    as_user(page, "qc2")
    assert start_page_count(page, "Lots in QC", "lots waiting for result approval") == 1
    results_approve_from_start_page(page, "qc2", count=len(builders.PASSING))

    as_user(page, "lab2")
    retest_enter(page, lot_number=number, analyst_id=who["lab2"].pk, tested_at=timezone.now() - dt.timedelta(minutes=5))
    as_user(page, "qc2")
    results_approve_from_start_page(page, "qc2", count=1)

    as_user(page, "qc1")
    assert axe_serious(page) == []
    screenshot(page, "journey2-start-qc1")
    assert start_page_count(page, "Open investigations by age", "") == 1
    investigation_close_citing(page, lot_number=number, retest=f"{OOS_TEST} = {RETEST_VALUE} EU/mL")
    assert "Moved to QC complete: 1 record(s)." in lot_move(page, number, "move_to_qc_complete")

    signoff_open_from_start_page(page, number)
    checklist = page.locator("#content-main").text_content()
    assert "Every release condition is met." in checklist or "audit trail" in checklist.lower()
    assert page.locator("#content-main", has_text=f"{OOS_TEST}").count() == 1
    width, height = rendered_size(page)
    assert width <= 1280 and height <= 3200, (width, height)
    assert axe_serious(page) == []
    screenshot(page, "journey2-signoff", full_page=True)
    message = signoff_release(page, "qc1", "all results conform; OOS closed as laboratory error")
    assert message == f"Lot {number} released (signed by {printed('qc1')})."
    signature = page.locator("#content-main h2:has-text('Signatures') + p").text_content()
    assert printed("qc1") in signature and "released" in signature
    assert page.locator("input[name=action][value=released]").count() == 0  # a released lot is only recalled

    page.goto(f"/admin/batches/cmlot/?q={number}")
    row = page.locator("#result_list tbody tr", has_text=number)
    assert "released" in row.locator("td.field-status_shown").text_content().lower()
    release = row.locator("td.field-release").text_content()
    assert re.search(rf"{re.escape(printed('qc1'))} · .+ UTC · released", release), release
    name, pdf = lot_document(page, number, "documents_generate_certificate_of_analysis")
    assert pdf.startswith(b"%PDF") and number in name, name
    assert CMLot.objects.get(pk=lot.pk).status == LotStatus.RELEASED


# --- journey 3: shipping first-expiry-first-out ------------------------------------------------------------


def vial_scan(vial) -> str:
    """What a scanner set to send the human-readable form types for a vial's GS1 DataMatrix."""
    lot = vial.lot
    return (f"(01){lot.product.gtin}(17){lot.expiry:%y%m%d}(10){lot.lot_number}(21){vial.serial}")


def shipment_create(page, *, consignee: str, product: str) -> str:
    page.goto("/admin/shipping/shipment/add/")
    page.select_option("#id_consignee", label=consignee)
    page.select_option("#id_product", label=product)
    page.fill("#id_courier", "BioCourier")
    page.fill("#id_tracking_number", "BC-77120")
    page.fill("#id_logger_serial", "LOG-5521")
    page.select_option("#id_shipper_type", index=1)
    page.select_option("#id_coolant", index=1)
    save(page, "_continue")
    message = success(page)
    reference = re.search(r"SHP-\d+", message)
    assert reference, message
    return reference.group(0)


def shipment_step(page, title: str) -> None:
    page.locator(".field-steps a.button", has_text=re.compile(rf"^{re.escape(title)}$")).click()
    page.wait_for_load_state()


def step_submit(page) -> None:
    page.click("#content-main form input[type=submit]")
    page.wait_for_load_state()


def shipment_scan_vials(page, scans: list[str]) -> str:
    """The builder's scan field: each scan typed as the scanner types it, ended by Enter."""
    shipment_step(page, "Add vials")
    assert axe_serious(page) == []
    screenshot(page, "journey3-shipment-builder")
    field = page.locator("#id_scans")
    for scan in scans:
        field.press_sequentially(scan)
        field.press("Enter")
    step_submit(page)
    return success(page)


def final_vial_labels_print(page, *, lot, serials: list[str], printer: str, reason: str) -> str:
    """ship1, on the lot's labels page: final labels for the scanned vials, to a printer (or a file)."""
    page.goto(f"/admin/batches/cmlot/{lot.pk}/labels/")
    form = page.locator("form#print-vial")
    form.locator("#id_print-vial-kind").select_option("final")
    form.locator("#id_print-vial-printer").select_option(printer)  # a printer's id, or download:pdf / download:zpl
    form.locator("#id_print-vial-vials").fill("\n".join(serials))
    form.locator("#id_print-vial-reason").fill(reason)
    form.locator("input[type=submit]").click()
    page.wait_for_load_state()
    assert "labels queued" in success(page)
    return wait_for_job(page)


@pytest.mark.req("FEAT-ADMINHOME-BROWSER", "LBL-REPRINT", "FEAT-PRINT-6", via="browser")
def test_journey_3_shipping_builds_a_shipment_by_scanning_first_expiry_first_out(page, zebra):
    ship1 = people("ship1")["ship1"]
    world = builders.make_world(coordinator=ship1)
    bench = builders.make_printer(world.lab, address=zebra.address, name="Zebra — dispatch bench")
    today = timezone.localdate()
    later_lot = world.lot(vials=4, expiry=today + dt.timedelta(days=300))
    first_lot = world.lot(vials=4, expiry=today + dt.timedelta(days=200))

    as_user(page, "ship1")
    assert axe_serious(page) == []
    screenshot(page, "journey3-start-ship1")
    stock = page.locator("#home-ship-stock tr")
    assert first_lot.lot_number in stock.nth(0).text_content()  # first expiry first
    assert later_lot.lot_number in stock.nth(1).text_content()
    assert start_page_count(page, "Released stock, first expiry first", f"{first_lot.product.name} · lot "
                            f"{first_lot.lot_number}") == 4

    vials = list(first_lot.vials.select_related("lot__product").order_by("sequence")[:3])
    # Final vial labels for the vials to pick, while they are still in released stock: to the Zebra on the bench
    # (ZPL over a real socket), then a PDF copy
    # for the archive; each names the labels it replaces (the builder's lots carry final labels already).
    serials = [v.serial for v in vials]
    final_vial_labels_print(page, lot=first_lot, serials=serials, printer=str(bench.pk),
                            reason="labels smudged at pack-out")
    assert "printed" in page.locator(".field-print_outcome .readonly").text_content().lower()
    assert len(zebra.printed) == 3 and all(s.encode() in b"".join(zebra.printed) for s in serials)
    name = final_vial_labels_print(page, lot=first_lot, serials=serials, printer="download:pdf",
                                   reason="PDF copy for the shipment file")
    assert name.endswith(".pdf")
    screenshot(page, "journey3-final-labels-job")

    reference = shipment_create(page, consignee=world.consignee.name, product=world.product.name)
    message = shipment_scan_vials(page, [vial_scan(v) for v in vials])
    assert message == f"3 vial(s) allocated to {reference}."
    inline = page.locator("#content-main").text_content()
    assert all(v.serial in inline for v in vials)


    for fmt in ("pdf", "zpl"):
        page.goto(page.url.split("/step/")[0] if "/step/" in page.url else page.url)
        shipment_step(page, "Print shipping label")
        page.select_option("#id_format", fmt)
        if page.locator("#id_reprint_reason").count() and fmt == "zpl":
            page.fill("#id_reprint_reason", "ZPL copy for the Zebra at the dock")
        step_submit(page)
        name = wait_for_job(page)
        assert name.endswith(f".{fmt}"), name
        downloaded, content = download_bytes(page, ".field-download_link a")
        assert content.startswith(b"%PDF" if fmt == "pdf" else b"^XA"), content[:20]
        page.goto(f"/admin/shipping/shipment/?q={reference}")
        page.locator("#result_list tbody tr th a", has_text=reference).click()
        page.wait_for_load_state()

    shipment_step(page, "Pack")
    step_submit(page)
    assert success(page) == f"{reference} packed."
    shipment_step(page, "Hand to courier")
    page.fill("#id_party", "R. Vogel (BioCourier driver)")
    sign(page, "ship1")
    step_submit(page)
    assert success(page) == f"{reference} shipped (signed)."
    custody = page.locator("#content-main").text_content()
    assert printed("ship1") in custody or "shipped" in custody

    shipment_step(page, "Record delivery")
    page.fill("#id_party", "Dr. A. Berg")
    step_submit(page)
    assert success(page) == f"{reference} delivered."
    shipment_step(page, "Upload logger file")
    log = builders.clean_log(timezone.now() - dt.timedelta(minutes=60), samples=12)
    page.set_input_files("#id_file", files=[{"name": "LOG-5521.csv", "mimeType": "text/csv", "buffer": log}])
    step_submit(page)
    assert success(page) == "Logger file stored: 0.00 min outside the range."
    chart = page.locator(".field-chart img[alt='temperature log']")
    chart.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", chart.element_handle())
    screenshot(page, "journey3-shipment-chart", full_page=True)
