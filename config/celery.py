"""The Celery app: JSON only, late acks, time limits, three queues and beat.

Periodic tasks are declared next to their code (``cmlims.periodic.register``) and collected here.
"""

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("cmlims")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _prepare_embedded_broker() -> None:
    # kombu's filesystem transport expects its folders to exist.
    options = app.conf.broker_transport_options or {}
    if str(app.conf.broker_url).startswith("filesystem"):
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)
    backend = str(app.conf.result_backend or "")
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    # beat cannot create its schedule file in a folder that does not exist (a fresh CMLIMS_DATA_DIR).
    schedule = app.conf.beat_schedule_filename
    if schedule:
        Path(schedule).parent.mkdir(parents=True, exist_ok=True)


_prepare_embedded_broker()

app.conf.task_queues = [
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("default", "labels", "reports")
]
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
app.autodiscover_tasks()


class _PeriodicSchedule(Mapping):
    """``beat_schedule`` read from cmlims.periodic when beat builds its scheduler.

    Periodic tasks register themselves when their tasks module is imported (autodiscovery), which can
    happen after the app is finalized; a snapshot taken then would silently miss them, a live view
    cannot.
    """

    def __getitem__(self, name: str) -> dict:
        from cmlims.periodic import beat_schedule

        return beat_schedule()[name]

    def __iter__(self) -> Iterator[str]:
        from cmlims.periodic import beat_schedule

        return iter(beat_schedule())

    def __len__(self) -> int:
        from cmlims.periodic import beat_schedule

        return len(beat_schedule())


app.conf.beat_schedule = _PeriodicSchedule()


@app.task(name="cmlims.ping")
def ping(value: str = "pong") -> str:
    """Round trip used by health checks and tests."""
    return value
