"""Issue 18 item 7: security headers, API docs served from the package (no CDN), no secret in the repository.
(`check --deploy` clean under config.settings.production: tests/cmlims/test_foundation.py.)"""

import math
import re
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from cmlims import roles

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.req("SEC-HEADERS")
@pytest.mark.parametrize("path", ["/admin/login/", "/api/v1/me/", "/api/docs/", "/healthz"])
def test_every_answer_carries_the_security_headers(path):
    response = Client().get(path)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    # Swagger UI opens the opener policy on purpose (its OAuth pop-up); every other page keeps it closed.
    assert response["Cross-Origin-Opener-Policy"] == ("unsafe-none" if path == "/api/docs/" else "same-origin")
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert "camera=()" in response["Permissions-Policy"]


@pytest.mark.req("SEC-HEADERS", via="api")
def test_api_answers_are_not_kept_in_shared_caches(make_user, auth_client):
    client = auth_client(make_user("lab1", roles.LAB_STAFF))
    assert client.get("/api/v1/me/")["Cache-Control"] == "no-store"


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.urls += [value for name, value in attrs if name in {"src", "href", "spec-url"} and value]


@pytest.mark.req("SEC-DOCS-LOCAL")
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_load_only_files_served_by_the_site(path):
    response = Client().get(path)
    assert response.status_code == 200
    page = response.content.decode()
    parser = _Assets()
    parser.feed(page)
    assert any("drf_spectacular_sidecar" in url for url in parser.urls), parser.urls
    assert all(url.startswith("/") and not url.startswith("//") for url in parser.urls), parser.urls
    assert not re.search(r"https?://(?!localhost|127\.0\.0\.1)", page.replace("http://www.w3.org", "")), \
        "no address outside the site"
    for url in parser.urls:
        if url.startswith(settings.STATIC_URL):
            assert finders.find(url.removeprefix(settings.STATIC_URL)), url  # in the package, found by staticfiles


# --- no secret in the repository -----------------------------------------------------------------

_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "assigned secret": re.compile(
        r"""(?i)\b\w*(?:secret|passw(?:or)?d|token|api_?key|audit_key)\w*["']?\s*[:=]\s*["']([^"'\s]{24,})["']"""),
}
# Values that look like secrets but are declared throwaways (test settings, test fixtures).
_THROWAWAY = re.compile(r"(?i)test|example|not-for-production|production-like|dummy|fake|xyz")


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def secrets_in(text: str) -> list[str]:
    found = []
    for kind, pattern in _PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            if kind == "assigned secret" and (_THROWAWAY.search(value) or _entropy(value) < 3.5):
                continue
            found.append(f"{kind}: {value[:12]}…")
    return found


@pytest.mark.req("SEC-NO-SECRETS")
@pytest.mark.parametrize(("text", "kind"), [
    ('SECRET_KEY = "q8Zr3vN1xK7m' + 'P2bT9wY4cH6jL0sD5fG8aE1uR"', "assigned secret"),  # split: not a hit here
    ("token: 'ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8'", "GitHub token"),
    ("-----BEGIN " + "PRIVATE KEY-----", "private key"),
    ("key AKIA" + "IOSFODNN7EXAMPLE here", "AWS access key"),
])
def test_the_secret_finder_finds_what_it_looks_for(text, kind):
    assert [f for f in secrets_in(text) if f.startswith(kind)]


@pytest.mark.req("SEC-NO-SECRETS")
def test_no_tracked_file_holds_a_secret():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)  # noqa: S607
    found = {}
    for name in tracked.stdout.decode().split("\0"):
        path = ROOT / name
        if not name or not path.is_file() or name.endswith((".lock", ".pdf", ".png", ".svg")):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if hits := secrets_in(text):
            found[name] = hits
    assert found == {}
