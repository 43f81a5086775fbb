"""Label templates: one template renders the same plain data to PDF (ReportLab, vector) and to ZPL.

The core knows no product domain: apps build ``VialLabel`` / ``CartonLabel`` / ``ShippingLabel``
values and hand them to ``render_pdf`` / ``render_zpl``. Each template has a version, recorded with
every print (LabelPrint), so a reprint can be traced to the layout that produced the original.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import inch, mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from cmlims.documents import zpl
from cmlims.documents.symbols import draw_symbol, gs1_128, gs1_datamatrix, gs1_date, human_readable
from cmlims.exceptions import InvalidInput

QUARANTINE = "QUARANTINE"
BATCH = 100  # labels per progress step: a job renders in batches inside one task


@dataclass(frozen=True)
class VialLabel:
    product_name: str
    gtin: str
    lot: str
    expiry: dt.date
    serial: str
    storage: str
    content: str
    manufacturer: str
    status: str = ""  # "QUARANTINE" until the lot is released
    copies: int = 1

    @property
    def key(self) -> str:
        return self.serial

    def ais(self) -> list[tuple[str, str]]:
        return [("01", self.gtin), ("17", gs1_date(self.expiry)), ("10", self.lot), ("21", self.serial)]


@dataclass(frozen=True)
class CartonLabel:
    product_name: str
    gtin: str
    lot: str
    expiry: dt.date
    count: int
    storage: str
    content: str
    manufacturer: str
    carton: str = "1"  # carton number within the lot, the reconciliation key
    status: str = ""
    copies: int = 1

    @property
    def key(self) -> str:
        return f"carton-{self.carton}"

    def ais(self) -> list[tuple[str, str]]:
        # (02)+(37): the carton holds `count` units of one GTIN.
        return [("02", self.gtin), ("37", str(self.count)), ("17", gs1_date(self.expiry)), ("10", self.lot)]


@dataclass(frozen=True)
class ShippingLabel:
    sscc: str
    ship_from: Sequence[str]
    ship_to: Sequence[str]
    contents: str
    count: int
    lot: str
    expiry: dt.date | None
    handling: str
    temperature: str
    reference: str = ""  # shipment number
    copies: int = 1

    @property
    def key(self) -> str:
        return self.sscc

    def ais(self) -> list[tuple[str, str]]:
        return [("00", self.sscc)]


LabelData = VialLabel | CartonLabel | ShippingLabel


def _fit(canvas: Canvas, text: str, x: float, y: float, *, size: float, max_width: float, font: str = "Helvetica"):
    """Draw ``text`` shrinking the font (down to 60 %) so it fits ``max_width``; beyond that it is cut."""
    actual = size
    while stringWidth(text, font, actual) > max_width and actual > size * 0.6:
        actual -= 0.25
    while stringWidth(text, font, actual) > max_width and len(text) > 1:
        text = text[:-2] + "…"
    canvas.setFont(font, actual)
    canvas.drawString(x, y, text)


@dataclass(frozen=True)
class LabelTemplate:
    name: str
    version: str
    width_mm: float
    height_mm: float
    data_type: type
    draw: Callable[[Canvas, LabelData, float, float], None] = field(repr=False)
    zpl_commands: Callable[[LabelData], list[str]] = field(repr=False)

    @property
    def size(self) -> tuple[float, float]:
        return self.width_mm * mm, self.height_mm * mm


# --- vial (50 x 25 mm) ---------------------------------------------------------------------------------


def _draw_vial(c: Canvas, d: VialLabel, ox: float, oy: float) -> None:
    symbol = gs1_datamatrix(d.ais())
    module = 17 * mm / symbol.width  # symbol 17 mm wide, whatever its module count
    draw_symbol(c, symbol, x=ox + 2 * mm, y=oy + 6.5 * mm, module=module)
    tx, width = ox + 21 * mm, 27.5 * mm
    _fit(c, d.product_name, tx, oy + 21 * mm, size=7, max_width=width, font="Helvetica-Bold")
    _fit(c, f"LOT {d.lot}", tx, oy + 17.6 * mm, size=6.5, max_width=width)
    _fit(c, f"SN {d.serial}", tx, oy + 14.6 * mm, size=6.5, max_width=width)
    _fit(c, f"EXP {d.expiry:%Y-%m-%d}", tx, oy + 11.6 * mm, size=6.5, max_width=width)
    _fit(c, d.storage, tx, oy + 8.8 * mm, size=5, max_width=width)
    _fit(c, d.content, tx, oy + 6.4 * mm, size=5, max_width=width)
    _fit(c, d.manufacturer, tx, oy + 4.0 * mm, size=4.5, max_width=width)
    _fit(c, human_readable(d.ais()), ox + 2 * mm, oy + 1.2 * mm, size=4.2, max_width=46 * mm)
    if d.status:  # boxed under the symbol, where nothing else is printed
        c.setLineWidth(0.6)
        c.rect(ox + 2 * mm, oy + 3.2 * mm, 17 * mm, 2.8 * mm, stroke=1, fill=0)
        c.setFont("Helvetica-Bold", 6)
        c.drawCentredString(ox + 10.5 * mm, oy + 3.9 * mm, d.status)


def _zpl_vial(d: VialLabel) -> list[str]:
    m = zpl.mm
    commands = [
        zpl.gs1_datamatrix(m(2), m(1.5), d.ais(), module=3),
        zpl.text(m(21), m(2), d.product_name, height=22, block=m(27)),
        zpl.text(m(21), m(6), f"LOT {d.lot}", height=20),
        zpl.text(m(21), m(9), f"SN {d.serial}", height=20),
        zpl.text(m(21), m(12), f"EXP {d.expiry:%Y-%m-%d}", height=20),
        zpl.text(m(21), m(15), d.storage, height=16, block=m(27)),
        zpl.text(m(21), m(17.5), d.content, height=16, block=m(27)),
        zpl.text(m(21), m(20), d.manufacturer, height=14, block=m(27)),
        zpl.text(m(2), m(22.5), human_readable(d.ais()), height=14, block=m(46)),
    ]
    if d.status:
        commands.append(zpl.box(m(2), m(18.6), m(17), m(3), 2))
        commands.append(zpl.text(m(3), m(19.1), d.status, height=18))
    return commands


# --- carton (100 x 70 mm) ------------------------------------------------------------------------------


def _draw_carton(c: Canvas, d: CartonLabel, ox: float, oy: float) -> None:
    symbol = gs1_datamatrix(d.ais())
    module = 30 * mm / symbol.width
    draw_symbol(c, symbol, x=ox + 5 * mm, y=oy + 10 * mm, module=module)
    tx, width = ox + 40 * mm, 56 * mm
    _fit(c, d.product_name, ox + 5 * mm, oy + 62 * mm, size=12, max_width=90 * mm, font="Helvetica-Bold")
    _fit(c, f"LOT {d.lot}", tx, oy + 52 * mm, size=10, max_width=width)
    _fit(c, f"EXP {d.expiry:%Y-%m-%d}", tx, oy + 46 * mm, size=10, max_width=width)
    _fit(c, f"CONTENTS {d.count} vials", tx, oy + 40 * mm, size=10, max_width=width, font="Helvetica-Bold")
    _fit(c, f"CARTON {d.carton}", tx, oy + 34 * mm, size=8, max_width=width)
    _fit(c, d.storage, tx, oy + 28 * mm, size=8, max_width=width)
    _fit(c, d.content, tx, oy + 23 * mm, size=8, max_width=width)
    _fit(c, d.manufacturer, tx, oy + 18 * mm, size=7, max_width=width)
    _fit(c, human_readable(d.ais()), ox + 5 * mm, oy + 5 * mm, size=7, max_width=90 * mm)
    if d.status:
        c.saveState()
        c.setFont("Helvetica-Bold", 11)
        c.rect(ox + 5 * mm, oy + 44 * mm, 30 * mm, 7 * mm, stroke=1, fill=0)
        c.drawCentredString(ox + 20 * mm, oy + 46 * mm, d.status)
        c.restoreState()


def _zpl_carton(d: CartonLabel) -> list[str]:
    m = zpl.mm
    commands = [
        zpl.text(m(5), m(4), d.product_name, height=40, block=m(90)),
        zpl.gs1_datamatrix(m(5), m(28), d.ais(), module=6),
        zpl.text(m(40), m(14), f"LOT {d.lot}", height=32),
        zpl.text(m(40), m(20), f"EXP {d.expiry:%Y-%m-%d}", height=32),
        zpl.text(m(40), m(26), f"CONTENTS {d.count} vials", height=32),
        zpl.text(m(40), m(32), f"CARTON {d.carton}", height=26),
        zpl.text(m(40), m(38), d.storage, height=24, block=m(56)),
        zpl.text(m(40), m(43), d.content, height=24, block=m(56)),
        zpl.text(m(40), m(48), d.manufacturer, height=22, block=m(56)),
        zpl.text(m(5), m(62), human_readable(d.ais()), height=22, block=m(90)),
    ]
    if d.status:
        commands.append(zpl.box(m(5), m(11), m(30), m(7), 3))
        commands.append(zpl.text(m(7), m(12.5), d.status, height=36))
    return commands


# --- shipping (4 x 6 in) -------------------------------------------------------------------------------


def _draw_shipping(c: Canvas, d: ShippingLabel, ox: float, oy: float) -> None:
    w = 4 * inch
    c.setLineWidth(1)
    _fit(c, "SHIP FROM", ox + 8, oy + 6 * inch - 16, size=7, max_width=w / 2, font="Helvetica-Bold")
    for i, line in enumerate(d.ship_from[:5]):
        _fit(c, line, ox + 8, oy + 6 * inch - 27 - i * 9, size=8, max_width=w / 2 - 12)
    c.line(ox, oy + 6 * inch - 78, ox + w, oy + 6 * inch - 78)
    _fit(c, "SHIP TO", ox + 8, oy + 6 * inch - 92, size=8, max_width=w, font="Helvetica-Bold")
    for i, line in enumerate(d.ship_to[:6]):
        _fit(c, line, ox + 8, oy + 6 * inch - 108 - i * 13, size=12, max_width=w - 16)
    c.line(ox, oy + 6 * inch - 190, ox + w, oy + 6 * inch - 190)
    y = oy + 6 * inch - 206
    rows = [
        f"CONTENTS {d.contents}",
        f"COUNT {d.count}",
        f"LOT {d.lot}" + (f"   EXP {d.expiry:%Y-%m-%d}" if d.expiry else ""),
        f"TRANSPORT {d.temperature}",
        d.handling,
    ]
    if d.reference:
        rows.append(f"SHIPMENT {d.reference}")
    for i, line in enumerate(rows):
        _fit(c, line, ox + 8, y - i * 13, size=10, max_width=w - 16, font="Helvetica-Bold" if i == 3 else "Helvetica")
    c.line(ox, oy + 2.3 * inch, ox + w, oy + 2.3 * inch)
    symbol = gs1_128(d.ais())
    module = (w - 24) / symbol.width
    bar_height = 1.3 * inch
    scaled = symbol.__class__(symbol.symbology, symbol.element_string, symbol.width, bar_height / module,
                              tuple(r.__class__(r.x, 0, r.width, bar_height / module) for r in symbol.rectangles))
    draw_symbol(c, scaled, x=ox + 12, y=oy + 0.6 * inch, module=module)
    _fit(c, "SSCC", ox + 8, oy + 2.3 * inch - 14, size=8, max_width=w, font="Helvetica-Bold")
    c.setFont("Helvetica", 11)
    c.drawCentredString(ox + w / 2, oy + 0.35 * inch, human_readable(d.ais()))


def _zpl_shipping(d: ShippingLabel) -> list[str]:
    dots = 203  # per inch
    commands = [zpl.text(20, 20, "SHIP FROM", height=20)]
    commands += [zpl.text(20, 45 + i * 24, line, height=22, block=380) for i, line in enumerate(d.ship_from[:5])]
    commands += [zpl.box(0, 175, 4 * dots, 1, 2), zpl.text(20, 185, "SHIP TO", height=22)]
    commands += [zpl.text(20, 215 + i * 36, line, height=34, block=770) for i, line in enumerate(d.ship_to[:6])]
    commands.append(zpl.box(0, 440, 4 * dots, 1, 2))
    rows = [f"CONTENTS {d.contents}", f"COUNT {d.count}",
            f"LOT {d.lot}" + (f"   EXP {d.expiry:%Y-%m-%d}" if d.expiry else ""),
            f"TRANSPORT {d.temperature}", d.handling] + ([f"SHIPMENT {d.reference}"] if d.reference else [])
    commands += [zpl.text(20, 455 + i * 34, line, height=28, block=770) for i, line in enumerate(rows)]
    commands.append(zpl.box(0, int(3.7 * dots), 4 * dots, 1, 2))
    commands.append(zpl.text(20, int(3.75 * dots), "SSCC", height=22))
    commands.append(zpl.gs1_128(40, int(3.95 * dots), d.ais(), height=int(1.3 * dots), module=3))
    commands.append(zpl.text(20, int(5.6 * dots), human_readable(d.ais()), height=30, block=770))
    return commands


TEMPLATES: dict[str, LabelTemplate] = {
    "vial": LabelTemplate("vial", "1", 50, 25, VialLabel, _draw_vial, _zpl_vial),
    "carton": LabelTemplate("carton", "1", 100, 70, CartonLabel, _draw_carton, _zpl_carton),
    "shipping": LabelTemplate("shipping", "1", 101.6, 152.4, ShippingLabel, _draw_shipping, _zpl_shipping),
}
LAYOUTS = ("page", "a4")


def template_get(name: str) -> LabelTemplate:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise InvalidInput(
            f"Unknown label template {name!r}.", fields={"template": [f"must be one of {', '.join(TEMPLATES)}"]}
        ) from None


def _check(template: LabelTemplate, items: Sequence[LabelData]) -> None:
    for item in items:
        if not isinstance(item, template.data_type):
            raise TypeError(f"{template.name} labels need {template.data_type.__name__}, got {type(item).__name__}")


def _copies(items: Sequence[LabelData]):
    for item in items:
        for _ in range(max(1, item.copies)):
            yield item


def render_pdf(
    template: LabelTemplate,
    items: Sequence[LabelData],
    *,
    layout: str = "page",
    title: str = "",
    on_progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """One label per page (label-sized pages for label printers) or an A4 sheet grid."""
    _check(template, items)
    if layout not in LAYOUTS:
        raise InvalidInput(f"Unknown layout {layout!r}.", fields={"layout": [f"must be one of {', '.join(LAYOUTS)}"]})
    buffer = io.BytesIO()
    label_w, label_h = template.size
    page = template.size if layout == "page" else A4
    canvas = Canvas(buffer, pagesize=page, pageCompression=1)
    canvas.setTitle(title or f"{template.name} labels")
    canvas.setCreator(f"cmlims label template {template.name} v{template.version}")
    margin, gap = 8 * mm, 3 * mm
    columns = max(1, int((A4[0] - 2 * margin + gap) // (label_w + gap)))
    rows = max(1, int((A4[1] - 2 * margin + gap) // (label_h + gap)))
    expanded = list(_copies(items))
    total = len(expanded)
    for index, item in enumerate(expanded):
        if layout == "page":
            ox, oy = 0.0, 0.0
            if index:
                canvas.showPage()
        else:
            slot = index % (columns * rows)
            if index and slot == 0:
                canvas.showPage()
            ox = margin + (slot % columns) * (label_w + gap)
            oy = A4[1] - margin - (slot // columns + 1) * label_h - (slot // columns) * gap
            canvas.setLineWidth(0.25)
            canvas.setStrokeGray(0.75)
            canvas.rect(ox, oy, label_w, label_h, stroke=1, fill=0)  # cut guide
            canvas.setStrokeGray(0)
        canvas.saveState()
        template.draw(canvas, item, ox, oy)
        canvas.restoreState()
        if on_progress and ((index + 1) % BATCH == 0 or index + 1 == total):
            on_progress(index + 1, total)
    if not expanded:
        raise InvalidInput("No labels to print.", fields={"vials": ["no labels selected"]})
    canvas.save()
    return buffer.getvalue()


def render_zpl(
    template: LabelTemplate, items: Sequence[LabelData], *, on_progress: Callable[[int, int], None] | None = None
) -> str:
    """One ``^XA…^XZ`` per label; copies use ``^PQ`` so the printer repeats the same label."""
    _check(template, items)
    if not items:
        raise InvalidInput("No labels to print.", fields={"vials": ["no labels selected"]})
    out = []
    total = len(items)
    for index, item in enumerate(items):
        commands = template.zpl_commands(item)
        out.append(zpl.label(commands, width_mm=template.width_mm, height_mm=template.height_mm, copies=item.copies))
        if on_progress and ((index + 1) % BATCH == 0 or index + 1 == total):
            on_progress(index + 1, total)
    return "".join(out)
