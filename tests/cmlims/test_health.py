"""/healthz: 200 only when the database, the broker and at least one worker answer; 503 otherwise. A healthy
check stops at the first worker's reply instead of waiting out the ping timeout.

Real parts only: the "broker down" case points the broker setting at a closed local port, the
"no worker" case at a real, empty broker namespace nobody consumes from.
"""

import socket
from urllib.parse import urlsplit, urlunsplit

import pytest


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.req("FEAT-HEALTH")
def test_healthz_is_200_when_database_broker_and_worker_are_up(client, settings, celery_worker_process):
    settings.CMLIMS_HEALTH_PING_TIMEOUT = 30  # waited out only when no worker answers
    response = client.get("/healthz")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["workers"]["workers"] == [celery_worker_process.hostname]
    assert body["checked_in_ms"] < 30_000, "the check stops at the first worker's reply"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_port_is_closed(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert "refused" in body["broker"]["error"].lower()
    assert body["workers"] == {"ok": False, "workers": [], "error": "broker unreachable"}


@pytest.mark.django_db
@pytest.mark.req("FEAT-HEALTH")
def test_healthz_is_503_when_no_worker_answers(client, settings, tmp_path):
    """A live broker with nobody consuming: a Redis database of its own, or an empty embedded broker."""
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        parts = urlsplit(settings.CELERY_BROKER_URL)
        db = int(parts.path.strip("/") or 0)
        # Control broadcasts are namespaced per Redis database: no test worker listens on this one.
        settings.CELERY_BROKER_URL = urlunsplit(parts._replace(path=f"/{(db + 8) % 16}"))
    else:
        folders = {key: tmp_path / key for key in ("data_folder_in", "processed_folder", "control_folder")}
        for folder in folders.values():
            folder.mkdir()
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
            **{key: str(path) for key, path in folders.items()},
            "data_folder_out": str(folders["data_folder_in"]),
            "store_processed": False,
        }

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["broker"]["ok"] is True
    assert body["workers"]["ok"] is False
    assert body["workers"]["workers"] == []
    assert body["workers"]["error"] == f"no worker answered a ping within {settings.CMLIMS_HEALTH_PING_TIMEOUT}s"


@pytest.mark.django_db
def test_healthz_needs_no_authentication_and_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
