"""Demo printers: a Zebra on the packaging bench (vial stock), one in dispatch (4×6 in shipping labels) and an
office printer in QA, both pointing at the loopback
simulators that ``make demo`` starts (``cmlims.printing.simulators``). Recorded by lab1, through the service."""

from __future__ import annotations

from decimal import Decimal

from cmlims.printing.models import Printer, PrinterKind
from cmlims.printing.services import A4_MM, printer_create
from cmlims.printing.simulators import DEMO_IPP_PORT, DEMO_ZPL_PORT

DEMO_PRINTERS = (
    {"name": "Zebra ZD621 — packaging bench", "location": "Packaging room, bench 2", "kind": PrinterKind.ZPL,
     "address": f"127.0.0.1:{DEMO_ZPL_PORT}", "stock_width_mm": Decimal("50"), "stock_height_mm": Decimal("25"),
     "stock_material": "polypropylene, cryo-rated"},
    {"name": "Zebra ZT411 — dispatch", "location": "Dispatch room", "kind": PrinterKind.ZPL,
     "address": f"127.0.0.1:{DEMO_ZPL_PORT}", "stock_width_mm": Decimal("101.6"), "stock_height_mm": Decimal("152.4"),
     "stock_material": "4×6 in thermal shipping labels"},
    {"name": "Office printer — QA", "location": "QA office", "kind": PrinterKind.IPP,
     "address": f"ipp://127.0.0.1:{DEMO_IPP_PORT}/printers/office", "stock_width_mm": A4_MM[0],
     "stock_height_mm": A4_MM[1], "stock_material": "A4 label sheets"},
)


def seed(users: dict) -> None:
    for values in DEMO_PRINTERS:
        if not Printer.objects.filter(name=values["name"]).exists():
            printer_create(actor=users["lab1"], **values)
