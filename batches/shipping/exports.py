"""CSV exports that are safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or tab / carriage return) is run as a formula by
Excel and LibreOffice ("CSV injection"): a consignee named ``=HYPERLINK(...)`` could exfiltrate data
from the recall sheet. Such text cells get a leading apostrophe, which spreadsheets show as text
(``cmlims.exports.formula_neutralised``, the one neutraliser of every export).
Numbers are written as they are (``-2.5`` stays a number).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from cmlims.exports import formula_neutralised


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return formula_neutralised(str(value))


def csv_render(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue()
