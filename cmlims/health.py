"""Health of the parts cmlims needs: the database, the broker and at least one live worker.

The worker check broadcasts a ping and stops at the first reply, so a healthy answer takes a round trip
through the broker, not the whole ping timeout (``CMLIMS_HEALTH_PING_TIMEOUT``, which only a check that
finds no worker waits out). It says that some worker consumes, not which ones run: the workers that
answered are listed, at most one.

The broker is read from the Django settings at call time (``CELERY_BROKER_URL`` and
``CELERY_BROKER_TRANSPORT_OPTIONS``), through a fresh connection with a short timeout and no
retries: a load balancer polls /healthz every few seconds, so a dead broker must answer "down"
quickly instead of holding a web worker in kombu's reconnect loop.

The Celery app is the project's, reached as ``celery.current_app`` like every ``shared_task`` here:
config/celery.py creates it under Django settings, which makes it the default app in every thread.
"""

import time
from typing import Any

from celery import current_app as app
from django.conf import settings
from django.db import connection
from kombu import Connection
from kombu.pidbox import Mailbox

BROKER_TIMEOUT = 2.0  # seconds for connecting to the broker


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def database_state() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported as text
        return {"ok": False, "vendor": connection.vendor, "error": _error(exc)}


def broker_connection() -> Connection:
    """A new connection to the configured broker that gives up after BROKER_TIMEOUT."""
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    # redis-py retries refused connections on its own; one attempt is the answer we want.
    options.update(max_retries=0, socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT)
    return app.connection_for_write(
        url=settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT, transport_options=options
    )


def _transport_name(conn: Connection) -> str:
    return conn.transport.driver_name if hasattr(conn.transport, "driver_name") else conn.transport_cls


def broker_state(conn: Connection) -> dict[str, Any]:
    try:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT)
        # Opening a channel proves the broker answers (for Redis it is a real round trip).
        conn.default_channel  # noqa: B018
        return {"ok": True, "transport": str(_transport_name(conn))}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": _error(exc)}


def _control_mailbox() -> Mailbox:
    """Celery's control mailbox, but publishing on the connection it is given.

    ``app.control`` publishes through the app's cached producer pool, which would ping whatever
    broker that pool was first opened against, not necessarily the one this check connected to.
    """
    conf = app.conf
    return Mailbox(
        conf.control_exchange, type="fanout", accept=conf.accept_content, serializer=conf.task_serializer,
        queue_ttl=conf.control_queue_ttl, reply_queue_ttl=conf.control_queue_ttl,
        queue_expires=conf.control_queue_expires, reply_queue_expires=conf.control_queue_expires,
    )


def workers_state(conn: Connection, timeout: float | None = None) -> dict[str, Any]:
    """The first worker that answers a broadcast ping through the broker within ``timeout``."""
    timeout = settings.CMLIMS_HEALTH_PING_TIMEOUT if timeout is None else timeout
    try:
        replies = _control_mailbox()(conn)._broadcast("ping", {}, reply=True, timeout=timeout, limit=1) or []
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "workers": [], "error": _error(exc)}
    names = sorted(name for reply in replies for name in reply)
    state: dict[str, Any] = {"ok": bool(names), "workers": names}
    if not names:
        state["error"] = f"no worker answered a ping within {timeout}s"
    return state


def health() -> dict[str, Any]:
    """{"ok", "database", "broker", "workers", "checked_in_ms"}; ok only when all three are up."""
    started = time.monotonic()
    db = database_state()
    with broker_connection() as conn:
        broker = broker_state(conn)
        unreachable = {"ok": False, "workers": [], "error": "broker unreachable"}
        workers = workers_state(conn) if broker["ok"] else unreachable
    return {
        "ok": db["ok"] and broker["ok"] and workers["ok"],
        "database": db,
        "broker": broker,
        "workers": workers,
        "checked_in_ms": round((time.monotonic() - started) * 1000),
    }
