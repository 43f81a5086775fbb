"""Pointing this process's Celery app at another broker for a while (a closed port: a broker that is down)."""

from __future__ import annotations

from contextlib import contextmanager

from config.celery import app

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/4"  # nothing listens on port 1: connection refused at once


@contextmanager
def broker_at(url: str):
    """Point this process's Celery app at another broker URL (drops pooled connections both ways)."""
    old = app.conf.broker_url
    app._after_fork()
    app.conf.broker_url = url
    try:
        yield
    finally:
        app._after_fork()
        app.conf.broker_url = old
