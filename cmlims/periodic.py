"""Registry of periodic (beat) tasks: apps declare them next to their code, config/celery.py collects them."""

from datetime import timedelta

_SCHEDULE: dict[str, dict] = {}


def register(name: str, task: str, every: timedelta, queue: str = "default") -> None:
    _SCHEDULE[name] = {"task": task, "schedule": every.total_seconds(), "options": {"queue": queue}}


def beat_schedule() -> dict[str, dict]:
    return dict(_SCHEDULE)
