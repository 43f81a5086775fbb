"""Audit trail throughput: entries per second for a 10,000-row bulk change, as a ratio against a floor
measured in the same run (so the figure does not depend on the machine).

Floor: the same ``bulk_update`` of the same 10,000 rows without the audit trail (what the change costs anyway).
Measured: ``audited_bulk_update`` — locked read of the stored rows, per-row diff, one HMAC-chained entry per
row under the chain lock, bulk insert of the entries — in one transaction, like a service does it.
Also reported: ``audited_queryset_update`` (same rows, an update in the database plus a re-read) and the
chain append alone.

Runs in a throwaway test database (created and dropped here), never the configured one. The README's
"Audit trail" figure comes from a PostgreSQL run: DATABASE_URL=postgres://… python -m benchmarks audit

Run: python -m benchmarks audit   (or: python benchmarks/bench_audit.py [rows])
"""

from __future__ import annotations

import datetime as dt
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._support import best, in_throwaway_database  # noqa: E402

ROWS = 10_000
REPEAT = 3
MAX_RATIO = 6.0  # audited bulk change / plain bulk_update of the same rows


def run(rows: int = ROWS) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from cmlims.audit import (
        Action,
        PendingEntry,
        append_entries,
        audited_bulk_create,
        audited_bulk_update,
        audited_queryset_update,
        audited_write,
    )
    from cmlims.models import ApiToken

    user = get_user_model().objects.create_user("bench", password="bench-password-0123")
    now = timezone.now()
    with transaction.atomic():
        fresh = []
        for _ in range(rows):
            raw, digest = ApiToken.new_key()
            fresh.append(ApiToken(user=user, digest=digest, prefix=raw[:8], expires_at=now))
        audited_bulk_create(ApiToken, fresh, actor=user, clean=False)
    tokens = list(ApiToken.objects.select_related("user").order_by("pk"))
    step = iter(range(1, 10**6))

    def bump() -> None:
        shift = dt.timedelta(seconds=next(step))
        for token in tokens:
            token.expires_at = now + shift

    def floor() -> None:
        bump()
        with transaction.atomic(), audited_write():
            ApiToken.objects.bulk_update(tokens, ["expires_at"], batch_size=1000)

    def audited() -> None:
        bump()
        with transaction.atomic():
            assert audited_bulk_update(tokens, ["expires_at"], actor=user) == rows

    def audited_qs() -> None:
        shift = dt.timedelta(seconds=next(step))
        with transaction.atomic():
            tokens_qs = ApiToken.objects.select_related("user")  # what __str__ (the object_repr) reads
            assert audited_queryset_update(tokens_qs, actor=user, expires_at=now + shift) == rows

    pending = [PendingEntry(Action.CHANGED, "cmlims.apitoken", str(t.pk), f"token {t.prefix}",
                            {"expires_at": ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"]}, "")
               for t in tokens]

    def append_only() -> None:
        with transaction.atomic():
            append_entries(actor=user, pending=pending)

    # Interleaved so that both see the same machine load.
    floor_s = audited_s = float("inf")
    for _ in range(REPEAT):
        floor_s = min(floor_s, best(floor, 1))
        audited_s = min(audited_s, best(audited, 1))
    return {
        "vendor": connection.vendor,
        "rows": rows,
        "floor_s": floor_s,
        "audited_s": audited_s,
        "queryset_s": best(audited_qs, REPEAT),
        "append_s": best(append_only, REPEAT),
    }


def main(rows: int = ROWS) -> int:
    result = in_throwaway_database(run, rows)
    n = result["rows"]
    ratio = result["audited_s"] / result["floor_s"]
    print(f"{n:,} rows on {result['vendor']}: plain bulk_update (floor) {n / result['floor_s']:,.0f} rows/s; "
          f"audited_bulk_update {n / result['audited_s']:,.0f} entries/s (ratio {ratio:.2f}, limit {MAX_RATIO}); "
          f"audited_queryset_update {n / result['queryset_s']:,.0f} entries/s "
          f"(ratio {result['queryset_s'] / result['floor_s']:.2f}); chain append alone "
          f"{n / result['append_s']:,.0f} entries/s")
    ok = ratio <= MAX_RATIO
    print("OK" if ok else "TOO SLOW")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else ROWS))
