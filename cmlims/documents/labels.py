"""The label engine: one declarative layout per label, rendered to PDF (ReportLab, vector) and to ZPL.

A layout is data: text fields, repeated lines, GS1 symbols and boxes/rules, placed in mm from the label's
top-left corner (text by its baseline), font sizes in points. ``render_pdf`` and ``render_zpl`` read the same
layout, so a label is declared once and both outputs agree.

The core knows no product domain: apps declare their label data (a frozen dataclass with ``key``, ``copies``
and ``ais()``), its layout and a printer-test sample, and register the template (``label_template_register``).
Each template has a version, recorded with every print (LabelPrint), so a reprint can be traced to the layout
that produced the original: change the version whenever the layout changes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from cmlims.documents import zpl
from cmlims.documents.symbols import RowPaths, draw_symbol, gs1_128, gs1_datamatrix, human_readable
from cmlims.exceptions import InvalidInput

QUARANTINE = "QUARANTINE"
BATCH = 100  # labels per progress step: a job renders in batches inside one task
PT = 25.4 / 72  # one point in mm, for layouts drawn in points
_ASCENT = 0.75  # baseline below the top of a text cell, as a share of the font size (ZPL places cells by top)
FONTS = ("Helvetica", "Helvetica-Bold")  # ZPL prints both in its scalable font 0


class LabelData(Protocol):
    copies: int

    @property
    def key(self) -> str: ...

    def ais(self) -> list[tuple[str, str]]: ...


# --- layout elements -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """One line at (x, y): ``value`` is a format string over the label's fields (``{hri}`` is the human-readable
    data of its symbol); it shrinks (PDF) or is clipped (ZPL) to ``width``; ``when`` names a field that must be
    set for the line to print."""

    x: float
    y: float
    value: str
    size: float
    width: float
    bold: bool = False
    center: bool = False
    when: str = ""


@dataclass(frozen=True)
class Lines:
    """The first ``limit`` items of the sequence field ``source``, one line each, ``step`` mm apart."""

    x: float
    y: float
    source: str
    step: float
    limit: int
    size: float
    width: float


@dataclass(frozen=True)
class Box:
    """A rectangle, or a horizontal rule when ``height`` is 0; ``line`` is its stroke in mm."""

    x: float
    y: float
    width: float
    height: float
    line: float
    when: str = ""


@dataclass(frozen=True)
class Symbol:
    """The label's GS1 symbol (from ``ais()``) with its top-left corner at (x, y), ``width`` wide; a DataMatrix is
    square, a GS1-128 is ``height`` tall."""

    x: float
    y: float
    width: float
    kind: Literal["datamatrix", "gs1_128"] = "datamatrix"
    height: float = 0.0


Element = Text | Lines | Box | Symbol


@dataclass(frozen=True)
class LabelTemplate:
    name: str
    version: str
    width_mm: float
    height_mm: float
    data_type: type
    layout: tuple[Element, ...] = field(repr=False)
    sample: Callable[[int], Any] = field(repr=False)  # the n-th printer test label (no product on it)

    @property
    def size(self) -> tuple[float, float]:
        return self.width_mm * mm, self.height_mm * mm


class _Values(dict):
    """The fields a layout's format strings read: the label's fields, ``hri``, and its properties (looked up
    only when asked: a dict keeps ``format_map`` in C for the plain fields)."""

    __slots__ = ("data",)

    def __init__(self, data: LabelData, hri: str) -> None:
        super().__init__(data.__dict__, hri=hri)
        self.data = data

    def __missing__(self, name: str) -> Any:
        return getattr(self.data, name)


def _shown(element: Text | Box, data: LabelData) -> bool:
    return not element.when or bool(getattr(data, element.when))


def _lines(element: Lines, data: LabelData) -> list[tuple[float, str]]:
    items = getattr(data, element.source)[:element.limit]
    return [(element.y + i * element.step, line) for i, line in enumerate(items)]


# --- registry ------------------------------------------------------------------------------------------

TEMPLATES: dict[str, LabelTemplate] = {}
LAYOUTS = ("page", "a4")


def label_template_register(template: LabelTemplate) -> LabelTemplate:
    """Register (or re-register, e.g. on autoreload) a label template by its name."""
    TEMPLATES[template.name] = template
    return template


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


# --- PDF -----------------------------------------------------------------------------------------------


# What a job has drawn already (text lines and boxes, by everything that decides their operators): a lot's
# labels repeat most of their lines at the same place, so each is fitted and formatted by ReportLab once and its
# operators written again as they are (B3; the output is byte-identical, pinned by tests/.../test_label_bytes.py).
Drawn = dict[tuple, str]
_DRAWN_KEPT = 20_000


def _once(canvas: Canvas, drawn: Drawn, key: tuple, draw: Callable[[], None]) -> None:
    """Run ``draw`` the first time ``key`` is seen in this job, and write the operators it wrote the next times.

    Its operators depend only on ``key`` and on the font state, which every text draw sets first (``_fit``), so
    they can be repeated; the font state they leave behind is not restored, and nothing reads it before the next
    draw sets it again or the label's ``restoreState``. ReportLab keeps a page's operators in ``Canvas._code``
    (one string each, joined by newlines into the page stream): the new ones are read from there."""
    ops = drawn.get(key)
    if ops is not None:
        canvas.addLiteral(ops)
        return
    start = len(canvas._code)
    draw()
    if len(drawn) < _DRAWN_KEPT:
        drawn[key] = "\n".join(canvas._code[start:])


def _fit(canvas: Canvas, text: str, x: float, y: float, *, size: float, max_width: float, font: str,
         center: bool = False) -> None:
    """Draw ``text`` shrinking the font (down to 60 %) so it fits ``max_width``; beyond that it is cut."""
    actual = size
    if stringWidth(text, font, size) > max_width:  # most lines fit: one measurement
        while stringWidth(text, font, actual) > max_width and actual > size * 0.6:
            actual -= 0.25
        while stringWidth(text, font, actual) > max_width and len(text) > 1:
            text = text[:-2] + "…"
    canvas.setFont(font, actual)
    if center:
        canvas.drawCentredString(x + max_width / 2, y, text)
    else:
        canvas.drawString(x, y, text)


def _draw(template: LabelTemplate, c: Canvas, data: LabelData, ox: float, oy: float, row_paths: RowPaths,
          drawn: Drawn) -> None:
    top = oy + template.height_mm * mm  # layouts measure y downwards from the top edge
    ais = data.ais()
    values = _Values(data, human_readable(ais))
    for i, e in enumerate(template.layout):  # drawn: keyed by the element's place in the layout (one per job)
        if isinstance(e, Text):
            if _shown(e, data):
                text = e.value.format_map(values)
                _once(c, drawn, (i, text, ox, oy), lambda e=e, text=text: _fit(
                    c, text, ox + e.x * mm, top - e.y * mm, size=e.size, max_width=e.width * mm, font=FONTS[e.bold],
                    center=e.center))
        elif isinstance(e, Lines):
            for y, line in _lines(e, data):
                _once(c, drawn, (i, y, line, ox, oy), lambda e=e, y=y, line=line: _fit(
                    c, line, ox + e.x * mm, top - y * mm, size=e.size, max_width=e.width * mm, font=FONTS[0]))
        elif isinstance(e, Box):
            if _shown(e, data):
                _once(c, drawn, (i, ox, oy), lambda e=e: _box(c, e, ox, top))
        elif e.kind == "datamatrix":
            symbol = gs1_datamatrix(ais, row_paths=row_paths)
            module = e.width * mm / symbol.width  # the symbol fills the width, whatever its module count
            draw_symbol(c, symbol, x=ox + e.x * mm, y=top - e.y * mm - symbol.height * module, module=module)
        else:
            symbol = gs1_128(ais)
            # zint draws the bars at its own height: stretch them to the layout's.
            draw_symbol(c, symbol, x=ox + e.x * mm, y=top - (e.y + e.height) * mm, module=e.width * mm / symbol.width,
                        height=e.height * mm)


def _box(c: Canvas, e: Box, ox: float, top: float) -> None:
    c.setLineWidth(e.line * mm)
    if e.height:
        c.rect(ox + e.x * mm, top - (e.y + e.height) * mm, e.width * mm, e.height * mm, stroke=1, fill=0)
    else:
        c.line(ox + e.x * mm, top - e.y * mm, ox + (e.x + e.width) * mm, top - e.y * mm)


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
    row_paths: RowPaths = {}  # symbol rows already written in this job (symbols._encode)
    drawn: Drawn = {}  # text lines and boxes already drawn in this job (_once)
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
        _draw(template, canvas, item, ox, oy, row_paths, drawn)
        canvas.restoreState()
        if on_progress and ((index + 1) % BATCH == 0 or index + 1 == total):
            on_progress(index + 1, total)
    if not expanded:
        raise InvalidInput("No labels to print.", fields={"vials": ["no labels selected"]})
    canvas.save()
    return buffer.getvalue()


# --- ZPL -----------------------------------------------------------------------------------------------


def _zpl_text(x: float, y: float, value: str, *, size: float, width: float, center: bool = False) -> str:
    height = zpl.mm(size * PT)
    return zpl.text(zpl.mm(x), zpl.mm(y - _ASCENT * size * PT), value, height=height, block=zpl.mm(width),
                    center=center)


def _zpl_head(x: float, y: float, *, size: float, width: float, center: bool = False) -> str:
    """A text field's commands before its data (``_zpl_text`` less the data and ``^FS``)."""
    return _zpl_text(x, y, "", size=size, width=width, center=center)[:-len("^FS")]


@dataclass(frozen=True)
class _ZplPlan:
    """A layout's fixed ZPL (label head, positions, fonts, blocks, boxes) worked out once per template: per
    label only the data is formatted and escaped (B4)."""

    template: LabelTemplate
    head: str
    steps: tuple[tuple[str, Element, Any], ...]


_ZPL_PLANS: dict[int, _ZplPlan] = {}
_ESCAPED_KEPT = 10_000


def _zpl_plan(template: LabelTemplate) -> _ZplPlan:
    plan = _ZPL_PLANS.get(id(template))
    if plan is not None and plan.template is template:
        return plan
    steps: list[tuple[str, Element, Any]] = []
    for e in template.layout:
        if isinstance(e, Text):
            steps.append(("text", e, _zpl_head(e.x, e.y, size=e.size, width=e.width, center=e.center)))
        elif isinstance(e, Lines):
            heads = tuple(_zpl_head(e.x, e.y + i * e.step, size=e.size, width=e.width) for i in range(e.limit))
            steps.append(("lines", e, heads))
        elif isinstance(e, Box):
            thickness = max(1, zpl.mm(e.line))
            steps.append(("box", e, zpl.box(zpl.mm(e.x), zpl.mm(e.y), zpl.mm(e.width),
                                            max(zpl.mm(e.height), thickness), thickness)))
        else:
            steps.append((e.kind, e, (zpl.mm(e.x), zpl.mm(e.y), zpl.mm(e.width), zpl.mm(e.height))))
    plan = _ZplPlan(template, zpl.label_head(width_mm=template.width_mm, height_mm=template.height_mm), tuple(steps))
    _ZPL_PLANS[id(template)] = plan
    return plan


def _escape_kept(escaped: dict[str, str], text: str) -> str:
    done = escaped.get(text)
    if done is None:
        done = zpl.escape_field(text)
        if len(escaped) < _ESCAPED_KEPT:
            escaped[text] = done
    return done


def _zpl_label(plan: _ZplPlan, data: LabelData, escaped: dict[str, str]) -> str:
    """One label's ZPL; ``escaped`` (one per job) keeps each field text already escaped: a lot's labels repeat
    most of their lines."""
    ais = data.ais()
    values = _Values(data, human_readable(ais))
    parts = [plan.head]
    add = parts.append
    for kind, e, fixed in plan.steps:
        if kind == "text":
            if not e.when or getattr(data, e.when):
                text = e.value.format_map(values)
                done = escaped.get(text)
                add(fixed)
                add(_escape_kept(escaped, text) if done is None else done)
                add("^FS")
        elif kind == "lines":
            parts += [f"{head}{_escape_kept(escaped, line)}^FS"
                      for head, line in zip(fixed, getattr(data, e.source)[:e.limit], strict=False)]
        elif kind == "box":
            if not e.when or getattr(data, e.when):
                add(fixed)
        elif kind == "datamatrix":
            add(zpl.gs1_datamatrix(fixed[0], fixed[1], ais, size=fixed[2]))
        else:
            add(zpl.gs1_128(fixed[0], fixed[1], ais, width=fixed[2], height=fixed[3]))
    add(zpl.label_tail(data.copies))
    return "".join(parts)


def render_zpl(
    template: LabelTemplate, items: Sequence[LabelData], *, on_progress: Callable[[int, int], None] | None = None
) -> str:
    """One ``^XA…^XZ`` per label; copies use ``^PQ`` so the printer repeats the same label."""
    _check(template, items)
    if not items:
        raise InvalidInput("No labels to print.", fields={"vials": ["no labels selected"]})
    plan = _zpl_plan(template)
    escaped: dict[str, str] = {}
    if on_progress is None:
        return "".join([_zpl_label(plan, item, escaped) for item in items])
    out = []
    total = len(items)
    for index, item in enumerate(items):
        out.append(_zpl_label(plan, item, escaped))
        if (index + 1) % BATCH == 0 or index + 1 == total:
            on_progress(index + 1, total)
    return "".join(out)
