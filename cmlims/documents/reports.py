"""A generic A4 report layout (ReportLab platypus) from plain data: title block, sections of key/value
pairs, tables, paragraphs and images (charts); every page carries "Page x of y", the document id and the
audit chain head.

Builders (certificate of analysis, batch record, packing list) fill ``Report``; the core knows no domain.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cmlims.audit import ChainHead


@dataclass(frozen=True)
class Section:
    heading: str
    pairs: Sequence[tuple[str, str]] = ()  # key/value lines
    table_header: Sequence[str] = ()
    table_rows: Sequence[Sequence[str]] = ()
    highlighted_rows: Sequence[int] = ()  # indexes of rows to shade (e.g. failing results, changed entries)
    paragraphs: Sequence[str] = ()
    column_widths: Sequence[float] | None = None  # fractions of the frame width
    image_png: bytes | None = None  # e.g. a chart, drawn after the table at the frame width
    image_aspect: float = 3 / 7  # the image's height as a fraction of its width


@dataclass(frozen=True)
class Report:
    title: str
    document_id: str  # e.g. "CoA CM26-0042" — printed on every page
    chain_head: ChainHead
    generated_by: str
    generated_at: dt.datetime
    sections: Sequence[Section] = field(default_factory=list)
    subtitle: str = ""


_styles = getSampleStyleSheet()
_CELL = ParagraphStyle("cell", parent=_styles["BodyText"], fontSize=7.5, leading=9)
_CELL_BOLD = ParagraphStyle("cellbold", parent=_CELL, fontName="Helvetica-Bold")
_BODY = ParagraphStyle("body", parent=_styles["BodyText"], fontSize=9, leading=11.5)


def _p(text: str, style: ParagraphStyle = _CELL) -> Paragraph:
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def _numbered_canvas(report: Report):
    """A canvas that defers page output to know the page count: "Page x of y" on every page."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self):  # noqa: N802 - ReportLab's API
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._footer(total)
                super().showPage()
            super().save()

        def _footer(self, total: int) -> None:
            self.saveState()
            self.setFont("Helvetica", 7)
            self.setStrokeGray(0.6)
            self.line(15 * mm, 14 * mm, A4[0] - 15 * mm, 14 * mm)
            self.drawString(15 * mm, 10 * mm, f"{report.document_id} — generated {report.generated_at:%Y-%m-%d %H:%M} "
                                              f"UTC by {report.generated_by}")
            self.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Page {self._pageNumber} of {total}")
            head = report.chain_head
            self.drawString(15 * mm, 6.5 * mm, f"Audit chain head: #{head.sequence} {head.hash}")
            self.restoreState()

    return NumberedCanvas


def render_report(report: Report) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=20 * mm,
        title=report.title, author=report.generated_by, subject=report.document_id, creator="cmlims",
    )
    width = doc.width
    story: list = [Paragraph(escape(report.title), _styles["Title"])]
    if report.subtitle:
        story.append(Paragraph(escape(report.subtitle), _styles["Heading3"]))
    for section in report.sections:
        block: list = [Paragraph(escape(section.heading), _styles["Heading2"])]
        if section.pairs:
            rows = [[_p(k, _CELL_BOLD), _p(v)] for k, v in section.pairs]
            pairs = Table(rows, colWidths=[width * 0.3, width * 0.7])
            pairs.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                       ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey)]))
            block.append(pairs)
        for text in section.paragraphs:
            block.append(Paragraph(escape(text), _BODY))
        story.append(KeepTogether(block))
        if section.table_header:
            fractions = section.column_widths or [1 / len(section.table_header)] * len(section.table_header)
            data = [[_p(h, _CELL_BOLD) for h in section.table_header]]
            data += [[_p(cell) for cell in row] for row in section.table_rows]
            table = Table(data, colWidths=[width * f for f in fractions], repeatRows=1)
            style = [
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
            style += [("BACKGROUND", (0, i + 1), (-1, i + 1), colors.Color(1, 0.92, 0.8))
                      for i in section.highlighted_rows]
            table.setStyle(TableStyle(style))
            story.append(table)
            if not section.table_rows:
                story.append(Paragraph("None.", _BODY))
        if section.image_png:
            story.append(Image(io.BytesIO(section.image_png), width=width, height=width * section.image_aspect))
        story.append(Spacer(1, 4 * mm))
    doc.build(story, canvasmaker=_numbered_canvas(report))
    return buffer.getvalue()
