"""An expected refusal is logged once, on one line; the favicon is served (no 404 on every page)."""

import io
import logging

import pytest
from django.test import override_settings
from PIL import Image

from cmlims import roles

pytestmark = pytest.mark.django_db


def _streams_of(name: str) -> list[logging.StreamHandler]:
    """Every stream handler a record of logger ``name`` reaches (its own and its ancestors' while they propagate)."""
    found, logger = [], logging.getLogger(name)
    while logger is not None:
        found += [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
                  and not type(h).__module__.startswith("_pytest")]  # pytest's capture is not the site's log
        logger = logger.parent if logger.propagate else None
    return found


@pytest.mark.req("FEAT-ADM-LOGS")
@override_settings(DEBUG=True)  # Django's own console handler writes only with DEBUG on: the double line
def test_a_403_is_logged_once_without_a_traceback(client, make_user):
    client.force_login(make_user("qc9", roles.QC_OFFICER, is_staff=True))
    handlers = _streams_of("django.request")
    buffers = [io.StringIO() for _ in handlers]
    previous = [h.setStream(b) for h, b in zip(handlers, buffers, strict=True)]
    try:
        assert client.get("/admin/batches/cmlot/add/").status_code == 403
    finally:
        for h, stream in zip(handlers, previous, strict=True):
            h.setStream(stream)
    written = "".join(b.getvalue() for b in buffers)
    lines = [line for line in written.splitlines() if line.strip()]
    assert len(lines) == 1 and "Forbidden" in lines[0] and "/admin/batches/cmlot/add/" in lines[0], written
    assert "Traceback" not in written


@pytest.mark.req("FEAT-ADM-LOGS")
def test_favicon_is_served(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "ICO" and image.size == (32, 32)
