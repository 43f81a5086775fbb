"""Health of the parts cmlims needs: the database, the broker and at least one live worker."""

from django.db import connection

from config.celery import app


def database_state() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # noqa: BLE001 - any failure means "down", reported as text
        return {"ok": False, "error": str(exc)[:200]}


def broker_state() -> dict:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
            transport = conn.transport_cls
        return {"ok": True, "transport": str(transport)}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": str(exc)[:200]}


def workers_state(timeout: float = 1.5) -> dict:
    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "workers": [], "error": str(exc)[:200]}
    names = sorted(name for reply in replies for name in reply)
    return {"ok": bool(names), "workers": names}


def health() -> dict:
    db = database_state()
    broker = broker_state()
    workers = workers_state() if broker["ok"] else {"ok": False, "workers": [], "error": "broker down"}
    return {"ok": db["ok"] and broker["ok"] and workers["ok"], "database": db, "broker": broker, "workers": workers}
