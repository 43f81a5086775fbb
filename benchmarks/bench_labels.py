"""Label throughput: GS1 vial labels per second (PDF and ZPL) as a ratio against a floor measured in the
same run, so the result does not depend on the machine.

Floor: the same 50×25 mm pages with the same text drawn by ReportLab but no symbol (what any label costs).
Measured: the full vial template (zint GS1 DataMatrix encoded and drawn as vector rectangles + text).
The ratio must stay under MAX_PDF_RATIO; ZPL (the printer encodes the symbol, but we validate it with
zint) under MAX_ZPL_RATIO of the same floor.

Run: python -m benchmarks labels   (or: .venv/bin/python benchmarks/bench_labels.py [count])
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The renderers touch no database, but the vial template is declared (and registered) by the batches app.
from benchmarks._support import setup_django  # noqa: E402

setup_django()

from reportlab.lib.units import mm  # noqa: E402
from reportlab.pdfgen.canvas import Canvas  # noqa: E402

from batches.documents.labels import VialLabel  # noqa: E402
from cmlims.documents import labels  # noqa: E402

MAX_PDF_RATIO = 8.0  # measured 5-6 on a busy 2-core machine; pure-Python ReportLab or per-module drawing is >10
MAX_ZPL_RATIO = 3.0


def items(count: int) -> list[VialLabel]:
    return [VialLabel(product_name="MSC-CM lyophilisate 1 mL", gtin="09506000134352", lot="CM26-0042",
                      expiry=dt.date(2027, 6, 30), serial=f"CM260042{n:06d}", storage="Store at -25 to -15 °C",
                      content="1 mL fill, freeze-dried", manufacturer="cmlims demo site", status="QUARANTINE")
            for n in range(count)]


def floor_text_only(data: list[VialLabel]) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(50 * mm, 25 * mm), pageCompression=1)
    for index, d in enumerate(data):
        if index:
            canvas.showPage()
        canvas.setFont("Helvetica", 6.5)
        for line, y in ((d.product_name, 21), (d.lot, 17.6), (d.serial, 14.6), (str(d.expiry), 11.6),
                        (d.storage, 8.8), (d.content, 6.4), (d.manufacturer, 4.0)):
            canvas.drawString(21 * mm, y * mm, line)
    canvas.save()
    return buffer.getvalue()


def timed(fn, *args, repeat: int = 3, **kwargs) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best


def main(count: int = 500) -> int:
    data = items(count)
    floor = timed(floor_text_only, data)
    pdf = timed(labels.render_pdf, labels.TEMPLATES["vial"], data)
    zpl = timed(labels.render_zpl, labels.TEMPLATES["vial"], data)
    pdf_ratio, zpl_ratio = pdf / floor, zpl / floor
    print(f"{count} vial labels: floor (text only) {count / floor:,.0f}/s; PDF {count / pdf:,.0f}/s "
          f"(ratio {pdf_ratio:.2f}, limit {MAX_PDF_RATIO}); ZPL {count / zpl:,.0f}/s "
          f"(ratio {zpl_ratio:.2f}, limit {MAX_ZPL_RATIO})")
    ok = pdf_ratio <= MAX_PDF_RATIO and zpl_ratio <= MAX_ZPL_RATIO
    print("OK" if ok else "TOO SLOW")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
