"""The lot list payload (``GET /api/v1/lots/``) at 100,000 lots, as ratios measured in the same run (so the
figures do not depend on the machine).

Data: the demo seed (lots in every state, vials in several statuses, a released lot with its signature),
then copies of those lots up to ``LOTS`` — the newest ``WITH_VIALS`` copies with their template's vials — so
every item of the measured page carries vial counts.

Measured: one page of 500 lots through the whole stack (Django test client: authentication, filters, cursor
pagination, serializer, JSON) — the first page and a page 20 pages deep (cursor pagination stays O(1)).
Floors, in the same run:
- ``rows``: the bare read of the same 500 lot rows (``values()`` of their columns) encoded as JSON — what any
  list of these lots costs; the ratio says what the payload adds (product, vial counts, release, rendering).
- ``small``: the same first page when the database holds only ``SMALL`` lots — the ratio at 100,000 lots
  says whether the page grows with the table (it must not: no per-row queries, no full count).
The query count of a page is reported too (constant: the tests assert it), and the admin's lot changelist
(as lab staff) at ``LOTS`` against the same page at ``SMALL``.

Runs in a throwaway test database (created and dropped here), never the configured one. The README figure
comes from a PostgreSQL run: DATABASE_URL=postgres://… python -m benchmarks lots

Run: python -m benchmarks lots   (or: python benchmarks/bench_lots.py [lots])
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._support import best, in_throwaway_database  # noqa: E402

LOTS = 100_000
SMALL = 1_000
WITH_VIALS = 2_000
PAGE = 500
REPEAT = 5
MAX_ROWS_RATIO = 10.0  # payload page / bare read of the same rows
MAX_SCALE_RATIO = 3.0  # first page at LOTS / first page at SMALL


def _grow(total: int, templates: list, vials_by_lot: dict, *, with_vials: int) -> None:
    """Copy the template lots up to ``total`` lots; the newest ``with_vials`` copies made here get their
    template's vials. Setup only: written without audit entries, in the throwaway database."""
    from django.db import connection, transaction

    from batches.models import CMLot, Vial
    from cmlims.audit import audited_write

    existing = CMLot.objects.count()
    fields = [f.attname for f in CMLot._meta.concrete_fields if f.attname not in {"id", "lot_number"}]
    with transaction.atomic(), audited_write():
        made = []
        for i in range(existing, total):
            template = templates[i % len(templates)]
            made.append(CMLot(lot_number=f"BX{i:08d}", **{f: getattr(template, f) for f in fields}))
        made = CMLot.objects.bulk_create(made, batch_size=5000)
        vials = [
            Vial(serial=f"{lot.lot_number}-{v.sequence:05d}", lot_id=lot.pk, packaging_run_id=v.packaging_run_id,
                 sequence=v.sequence, status=v.status, storage_location_id=v.storage_location_id)
            for i, lot in zip(range(existing, total), made, strict=True)
            if i >= total - with_vials
            for v in vials_by_lot.get(templates[i % len(templates)].pk, [])
        ]
        Vial.objects.bulk_create(vials, batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum would do after a load this size
            cursor.execute("ANALYZE")


def run(lots: int = LOTS) -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from batches.models import CMLot, Vial
    from config.demo import seed_all

    users = seed_all(log=lambda _msg: None)
    templates = list(CMLot.objects.order_by("pk"))
    vials_by_lot: dict = {}
    for vial in Vial.objects.order_by("lot_id", "sequence"):
        vials_by_lot.setdefault(vial.lot_id, []).append(vial)
    settings.DEBUG = False  # as in production: no SQL logging, no debug pages
    client = Client(SERVER_NAME=settings.ALLOWED_HOSTS[0])
    client.force_login(users["qc1"])
    staff = Client(SERVER_NAME=settings.ALLOWED_HOSTS[0])
    staff.force_login(users["lab1"])
    url = f"/api/v1/lots/?page_size={PAGE}"
    columns = [f.attname for f in CMLot._meta.concrete_fields]

    def page(target: str = url) -> dict:
        response = client.get(target)
        assert response.status_code == 200, response.content[:500]
        return response.json()

    def admin_list() -> None:  # the lab's changelist (100 rows, filters, search box)
        response = staff.get("/admin/batches/cmlot/")
        assert response.status_code == 200, response.content[:500]

    def rows() -> None:
        json.dumps(list(CMLot.objects.order_by("-id").values(*columns)[:PAGE]), default=str)

    _grow(SMALL, templates, vials_by_lot, with_vials=WITH_VIALS)
    small_s = best(page, REPEAT)
    admin_small_s = best(admin_list, REPEAT)
    _grow(lots, templates, vials_by_lot, with_vials=WITH_VIALS)
    first = page()
    assert len(first["results"]) == PAGE
    assert any(sum(item["vials"].values()) for item in first["results"]), "the page must carry vial counts"
    deep = url
    depth = min(20, lots // PAGE - 1)
    for _ in range(depth):
        deep = page(deep)["next"]
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *args: queries.append(sql) or execute(sql, *args)):
        page()
    # Interleaved so that both see the same machine load.
    page_s = rows_s = float("inf")
    for _ in range(REPEAT):
        page_s = min(page_s, best(page, 1))
        rows_s = min(rows_s, best(rows, 1))
    return {
        "vendor": connection.vendor, "lots": CMLot.objects.count(), "vials": Vial.objects.count(),
        "small_s": small_s, "page_s": page_s, "rows_s": rows_s, "deep_s": best(lambda: page(deep), REPEAT),
        "queries": len(queries), "depth": depth,
        "admin_small_s": admin_small_s, "admin_s": best(admin_list, REPEAT),
    }


def main(lots: int = LOTS) -> int:
    result = in_throwaway_database(run, lots)
    rows_ratio = result["page_s"] / result["rows_s"]
    scale_ratio = result["page_s"] / result["small_s"]
    admin_ratio = result["admin_s"] / result["admin_small_s"]
    print(f"{result['lots']:,} lots, {result['vials']:,} vials on {result['vendor']}: a page of {PAGE} lots "
          f"in {result['page_s'] * 1000:.0f} ms ({result['queries']} queries; {result['depth']} pages deep "
          f"{result['deep_s'] * 1000:.0f} ms); ratio to the bare read of the same rows {rows_ratio:.1f} "
          f"(limit {MAX_ROWS_RATIO}); ratio to the same page at {SMALL:,} lots {scale_ratio:.2f} "
          f"(limit {MAX_SCALE_RATIO}); admin lot changelist {result['admin_s'] * 1000:.0f} ms, ratio to "
          f"{SMALL:,} lots {admin_ratio:.2f} (limit {MAX_SCALE_RATIO})")
    ok = rows_ratio <= MAX_ROWS_RATIO and max(scale_ratio, admin_ratio) <= MAX_SCALE_RATIO
    print("OK" if ok else "TOO SLOW")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else LOTS))
