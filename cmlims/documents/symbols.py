"""GS1 barcode symbols from zint (a real GS1 encoder), with every zint warning treated as an error.

ReportLab's own DataMatrix cannot encode FNC1/GS1, so symbols come from zint: its module bitmap read into
runs of dark modules per row, which the PDF renderers draw as one path; ZPL output instead lets the printer
encode the same data.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import zint
from stdnum import ean

from cmlims.exceptions import InvalidInput

# AIs this system writes, with their fixed lengths (None = variable, up to 20 characters).
AI_LENGTHS: dict[str, int | None] = {"00": 18, "01": 14, "02": 14, "10": None, "17": 6, "21": None, "37": None}
# GS1 keys ending in a mod-10 check digit.
_KEYS = {"00", "01", "02"}
# GS1 "CSET 82" — the characters allowed in (10) and (21); ^ and ~ are not among them.
_CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}$")


class SymbolError(InvalidInput):
    """The data cannot be encoded as a valid GS1 symbol (bad check digit, character, length)."""


class Rect(NamedTuple):
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Symbol:
    """An encoded symbol as runs of dark modules, one row after the other, for PDF drawing.

    ``path`` is PDF path operators ("x y w 1 re" …) in a space of one unit per module across and one per row
    up from the bottom: ``draw_symbol`` scales it with one ``cm``, so it is built once per symbol and never
    reformatted per rectangle."""

    symbology: str
    element_string: str  # bracket syntax, e.g. [01]09506000134352[17]281231
    width: float  # modules
    height: float  # modules (a linear symbol's bar height: zint's default)
    rows: int
    path: str

    @property
    def rectangles(self) -> tuple[Rect, ...]:
        """The runs as rectangles in modules, origin top-left (as zint's vector output draws them)."""
        row_height = self.height / self.rows
        numbers = [int(n) for n in self.path.replace("re", "").split()]
        return tuple(Rect(x, (self.rows - 1 - up) * row_height, length, row_height)
                     for x, up, length, _one in zip(*[iter(numbers)] * 4, strict=True))


def gs1_check_digit(digits: str) -> str:
    """GS1 mod-10 check digit (weights 3,1,3,… from the right) for GTIN/SSCC data digits."""
    if not digits.isdigit():
        raise SymbolError("GS1 keys are digits only.", fields={"gs1": [f"{digits!r} is not all digits"]})
    return ean.calc_check_digit(digits)


def sscc_compose(*, extension_digit: int, company_prefix: str, serial_reference: int) -> str:
    """An 18-digit SSCC: extension digit + GS1 company prefix + serial reference + check digit."""
    width = 16 - len(company_prefix)
    if width < 1 or not company_prefix.isdigit() or not 0 <= extension_digit <= 9:
        raise SymbolError("Invalid SSCC parts.", fields={"company_prefix": ["must be 6-12 digits"]})
    if serial_reference >= 10**width or serial_reference < 0:
        raise SymbolError(
            "SSCC serial reference out of range.", fields={"serial_reference": [f"must fit {width} digits"]}
        )
    body = f"{extension_digit}{company_prefix}{serial_reference:0{width}d}"
    return body + gs1_check_digit(body)


def gs1_date(value: dt.date) -> str:
    """YYMMDD for (17)."""
    return value.strftime("%y%m%d")


def element_string(ais: Sequence[tuple[str, str]]) -> str:
    """Bracket syntax for zint: [(ai, value), ...] -> "[01]…[17]…". Values are checked before zint sees them."""
    return "".join([_element(ai, value) for ai, value in ais])


@functools.lru_cache(maxsize=4096)  # a batch of labels repeats its GTIN, expiry and lot: each checked once
def _element(ai: str, value: str) -> str:
    if ai not in AI_LENGTHS:
        raise SymbolError(f"AI ({ai}) is not used by cmlims.", fields={"ai": [f"unsupported AI {ai}"]})
    length = AI_LENGTHS[ai]
    if ai in {"10", "21"}:
        if not _CSET82.match(value):
            raise SymbolError(
                f"AI ({ai}) value {value!r} must be 1-20 GS1 characters (letters, digits, - . / _ etc.).",
                fields={f"ai_{ai}": [f"{value!r} is not valid GS1 data"]},
            )
    elif ai == "37":
        if not value.isdigit() or len(value) > 8:
            raise SymbolError("AI (37) count must be up to 8 digits.", fields={"ai_37": [f"{value!r}"]})
    elif length is not None and (len(value) != length or not value.isdigit()):
        raise SymbolError(f"AI ({ai}) needs exactly {length} digits.", fields={f"ai_{ai}": [f"{value!r}"]})
    elif ai in _KEYS and (digit := ean.calc_check_digit(value[:-1])) != value[-1]:
        # zint checks it too, but gs1_modules asks zint once per shape of data, not per label.
        raise SymbolError(f"AI ({ai}) {value} has a wrong check digit.",
                          fields={f"ai_{ai}": [f"{value!r}: the check digit must be {digit}"]})
    elif ai == "17" and not ("01" <= value[2:4] <= "12" and value[4:] <= "31"):
        raise SymbolError(f"AI (17) {value} is not a date (YYMMDD).", fields={"ai_17": [f"{value!r}"]})
    return f"[{ai}]{value}"


def _zint(symbology: zint.Symbology, text: str, *, gs1_mode: bool) -> zint.Symbol:
    symbol = zint.Symbol()
    symbol.symbology = symbology
    if gs1_mode:
        symbol.input_mode = zint.InputMode.GS1
    symbol.warn_level = zint.WarningLevel.FAIL_ALL  # e.g. a bad check digit is an error, not a printed warning
    symbol.show_text = False  # human-readable text is drawn by the template, from the same data
    try:
        symbol.encode(text)
    except RuntimeError as exc:
        raise SymbolError(f"Cannot encode {text}: {exc}", fields={"symbol": [str(exc)]}) from exc
    return symbol


_DARK = re.compile("1+")
RowPaths = dict[tuple[bytes, int], str]
_ROW_PATHS_KEPT = 20_000


def _encode(symbology: zint.Symbology, text: str, *, gs1_mode: bool, row_paths: RowPaths | None = None) -> Symbol:
    """``row_paths`` (one per print job) keeps the path of each (row bits, row) already written: labels of a
    lot share GTIN, expiry and lot, so many of their rows come out identical."""
    symbol = _zint(symbology, text, gs1_mode=gs1_mode)
    # zint's bitmap: one row of bytes per symbol row, eight modules a byte, the first module in the low bit.
    width, rows = symbol.width, symbol.rows
    bitmap = symbol.encoded_data
    stride, used = bitmap.shape[1], (width + 7) // 8
    packed = bitmap.tobytes()
    seen = {} if row_paths is None else row_paths
    path = []
    for row in range(rows):
        up = rows - 1 - row  # the path's y grows upwards
        key = (packed[row * stride:row * stride + used], up)
        fragment = seen.get(key)
        if fragment is None:
            bits = f"{int.from_bytes(key[0], 'little'):0{width}b}"[::-1]
            fragment = " ".join([f"{m.start()} {up} {m.end() - m.start()} 1 re" for m in _DARK.finditer(bits)])
            if len(seen) < _ROW_PATHS_KEPT:
                seen[key] = fragment
        path.append(fragment)
    return Symbol(symbology.name, text, float(width), float(symbol.height), rows, " ".join(filter(None, path)))


# (zint symbology, GS1 input mode) per symbol kind: GS1-128 is GS1 by itself.
_KINDS = {"datamatrix": (zint.Symbology.DATAMATRIX, True), "gs1_128": (zint.Symbology.GS1_128, False)}


def gs1_datamatrix(ais: Sequence[tuple[str, str]], *, row_paths: RowPaths | None = None) -> Symbol:
    """GS1 DataMatrix (FNC1 first; decoders report ]d2); ``row_paths``: see ``_encode``."""
    return _encode(zint.Symbology.DATAMATRIX, element_string(ais), gs1_mode=True, row_paths=row_paths)


def gs1_128(ais: Sequence[tuple[str, str]]) -> Symbol:
    """GS1-128 (Code 128 with FNC1; decoders report ]C1)."""
    return _encode(zint.Symbology.GS1_128, element_string(ais), gs1_mode=False)


# A symbol's size depends on the AIs and on the class of each data character (digit, capital, small letter,
# the other characters as themselves), not on which digit or letter it is: "SN00017" and "SN98342" give the
# same DataMatrix and the same Code 128 width. zint encodes each shape once (tested against zint per label).
_CLASSES = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                         "0" * 10 + "A" * 26 + "a" * 26)
_MODULES: dict[tuple, int] = {}
_MODULES_KEPT = 10_000


def gs1_modules(kind: str, ais: Sequence[tuple[str, str]]) -> int:
    """Validate ``ais`` (every label: AIs, lengths, CSET 82, check digits, dates) and return the ``kind`` symbol's
    width in modules, from zint (which validates once more) the first time this shape of data is seen; in ZPL
    the printer draws the symbol, so 1,000 vial labels of a lot cost one zint encoding, not 1,000."""
    text = element_string(ais)
    key = (kind, *((ai, value.translate(_CLASSES)) for ai, value in ais))
    width = _MODULES.get(key)
    if width is None:
        symbology, gs1_mode = _KINDS[kind]
        width = _zint(symbology, text, gs1_mode=gs1_mode).width
        if len(_MODULES) < _MODULES_KEPT:
            _MODULES[key] = width
    return width


def human_readable(ais: Sequence[tuple[str, str]]) -> str:
    """The HRI line printed under a symbol: (01)09506000134352(17)281231…"""
    return "".join(f"({ai}){value}" for ai, value in ais)


def draw_symbol(canvas, symbol: Symbol, *, x: float, y: float, module: float,
                height: float | None = None) -> tuple[float, float]:
    """Draw ``symbol`` with its bottom-left corner at (x, y) in points, ``module`` points per module across and
    ``height`` points tall (default: square modules); returns its (width, height) in points.

    The path is in modules and rows: one ``cm`` places and scales it (zint's rows run downwards from the top,
    the path's upwards from the bottom), so a label pays one format per symbol, not one per rectangle (B3).
    """
    height = symbol.height * module if height is None else height
    canvas.addLiteral(f"q {module:.5f} 0 0 {height / symbol.rows:.5f} {x:.3f} {y:.3f} cm {symbol.path} f Q")
    return symbol.width * module, height
