"""Admin list exports (CSV, XLSX): the columns a person sees in the list, as text.

A cell that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage return) is
prefixed with an apostrophe (OWASP "CSV injection"): a lot number or a note typed as "=HYPERLINK(...)" stays
text when QC opens the file."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_neutralised(text: str) -> str:
    """THE neutraliser of every export: a cell a spreadsheet would run as a formula starts with a quote instead."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell_safe(value: object) -> str:
    return formula_neutralised("" if value is None else str(value))


def rows_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([cell_safe(h) for h in header])
    writer.writerows([cell_safe(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8 (µm, °C, →)


def rows_xlsx(header: Sequence[str], rows: Iterable[Sequence[object]], *, title: str) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=title[:31])  # Excel's limit on sheet names
    sheet.append([cell_safe(h) for h in header])
    for row in rows:
        sheet.append([cell_safe(v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
