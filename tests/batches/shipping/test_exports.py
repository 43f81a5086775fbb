"""CSV export neutralises spreadsheet formulas."""

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batches.shipping.exports import csv_cell, csv_render


@pytest.mark.req("README-CSV-INJECTION")
def test_formula_cells_are_neutralised():
    assert csv_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_cell("+1") == "'+1"
    assert csv_cell("-2+3") == "'-2+3"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("\tcmd") == "'\tcmd"
    assert csv_cell("Clinic = good") == "Clinic = good"


def test_numbers_none_and_booleans():
    assert csv_cell(-2) == "-2" and csv_cell(Decimal("-2.5")) == "-2.5"
    assert csv_cell(None) == "" and csv_cell(True) == "yes"


@given(st.lists(st.lists(st.text(max_size=30), min_size=2, max_size=2), max_size=20))
def test_rendered_csv_reads_back_with_no_formula_cell(rows):
    text = csv_render(["a", "b"], rows)
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read[0] == ["a", "b"] and len(read) == len(rows) + 1
    for original, back in zip(rows, read[1:], strict=True):
        for value, cell in zip(original, back, strict=True):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
            assert cell in (value, "'" + value)
