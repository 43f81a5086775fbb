"""Browser test helpers (tests/browser/): login, screenshots, axe-core, rendered size; fixtures live in
tests/browser/conftest.py."""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"


def login(page, username: str, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def screenshot(page, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def axe_serious(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s), e.g. {v['nodes'][0]['target']}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def rendered_size(page) -> tuple[int, int]:
    """(width, height) of the whole document as laid out at the viewport's width."""
    return page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")


SIDEWAYS_JS = """() => {
  const found = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) found.push(`page: ${root.scrollWidth} px wide`);
  for (const el of document.querySelectorAll('body *')) {
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowX) || el.clientWidth === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      const name = el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`;
      found.push(`${name}: ${el.scrollWidth} px in ${el.clientWidth} px`);
    }
  }
  return found;
}"""


def sideways_scrolling(page) -> list[str]:
    """What scrolls sideways at the viewport's width: the page itself, or any box inside it that scrolls
    (Django's result list and tabular inlines scroll inside their own box, which the page's width never shows)."""
    return page.evaluate(SIDEWAYS_JS)
