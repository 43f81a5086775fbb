"""Run the benchmark modules (all ``bench_*`` or the names given) and exit non-zero if any is over its limit."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    names = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(discover())}")
        return 2
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        status = importlib.import_module(f"benchmarks.{name}").main()
        verdict = "ok" if status == 0 else "OVER LIMIT"
        print(f"-- {name}: {verdict} ({time.perf_counter() - started:.1f}s)\n", flush=True)
        if status:
            failed.append(name)
    print("all benchmarks within their limits" if not failed else f"over limit: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
