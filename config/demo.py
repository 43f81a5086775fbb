"""Demo data: the one place that composes every app's demo seeders (``make seed``, ``make demo``).

Contract for a seeder (add its dotted path to SEEDERS, after the apps it builds on):

    def seed(users: dict[str, User]) -> None

- ``users`` maps the demo user names (lab1, lab2, qc1, qc2, ship1, robot, admin; see
  cmlims/demo.py) to User objects: act as the user who would really do the step
  (``audited_create(..., actor=users["lab1"])``, sign-offs as ``users["qc1"]``), through the
  services, so demo records carry real audit entries and signatures.
- Idempotent: a second ``seed_demo`` must change nothing (look records up by their natural key,
  e.g. a lot number, before creating them).
- All seeders run inside ONE transaction (``seed_all``): a failing seeder leaves nothing behind.
- Never called under production settings (``cmlims.demo.demo_allowed``).
- Queue no Celery work that must finish for the demo to make sense: the worker may not be up yet.

``manage.py seed_demo`` (a core command) runs ``seed_all`` through ``settings.CMLIMS_DEMO_SEED``: the
core never imports config.

The demo users themselves are created first by ``cmlims.demo.demo_users_ensure`` (also run alone by
``manage.py demo_users``), because every seeder needs them as actors.
"""

from collections.abc import Callable

from django.db import transaction
from django.utils.module_loading import import_string

from cmlims.demo import demo_allowed, demo_users_ensure

SEEDERS: list[str] = [
    "batches.demo.seed_product",  # the product first ...
    "qc.demo.seed_specifications",  # ... its specification signed into force (never backdated) ...
    "batches.demo.seed",  # ... then the lots, pooled under it
    "qc.demo.seed",  # after batches: QC results, investigations and sign-offs on the demo lots
    "batches.shipping.demo.seed",  # ships vials of the released demo lot
    "cmlims.printing.demo.seed",  # the bench Zebra and the office printer make demo runs on loopback
]


def seed_all(*, log: Callable[[str], None] = print) -> dict:
    """Create the demo users, then run every seeder in order, all in one transaction."""
    demo_allowed()
    with transaction.atomic():
        users = demo_users_ensure()
        log(f"demo users: {', '.join(users)}")
        for path in SEEDERS:
            seed = import_string(path)
            seed(users)
            log(f"seeded: {path}")
    return users
