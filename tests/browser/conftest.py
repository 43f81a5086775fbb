"""Browser tests: headless Debian chromium driven by Playwright for Python against pytest-django's live
server (its own thread, the test database). Playwright's own browser download does not work here, so the
browser is ``/usr/bin/chromium`` (``make install-browser`` / ``.ci/run`` install it when missing).

- ``page``: a fresh 1280x800 context per test; any console error or uncaught JavaScript error fails the test.
- helpers (login, screenshots, axe, rendered size): tests/support/browser.py.
- ``screenshot(page, name)``: into reports/screenshots/ (git-ignored).
- ``axe_serious(page)``: axe-core's serious and critical violations on the page (axe-playwright-python).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CMLIMS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
KNOWN_MISSING: tuple[str, ...] = ()
VIEWPORT = {"width": 1280, "height": 800}

ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="module")
def _sync_orm_beside_playwright():
    """Playwright's sync API runs an event loop in this thread while the browser is open; the tests' own ORM
    calls (and the database teardown) are still synchronous. Set only while a browser module runs: set for the
    whole session it leaks into every subprocess, and check --deploy refuses it (async.E001)."""
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    yield
    if previous is None:
        os.environ.pop(ASYNC_UNSAFE, None)
    else:
        os.environ[ASYNC_UNSAFE] = previous


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="module")
def browser(_sync_orm_beside_playwright):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install-browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    tab = context.new_page()
    problems: list[str] = []

    def console(msg) -> None:
        # /favicon.ico answers 404 until issue 17's small-defects branch adds one: the only error let through.
        if msg.type == "error" and not (msg.location or {}).get("url", "").endswith(KNOWN_MISSING):
            problems.append(f"console {msg.type}: {msg.text} ({(msg.location or {}).get('url', '')})")

    tab.on("console", console)
    tab.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    yield tab
    context.close()
    assert not problems, "\n".join(problems)
from tests.support.printers import zebra  # noqa: E402, F401 - the loopback Zebra (journey 3 prints final labels on it)
