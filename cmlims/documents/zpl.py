"""ZPL II building blocks with field data that cannot inject commands.

Text fields use ``^FH`` (hex indicator ``_``) and every byte outside printable ASCII, plus ``^``, ``~``
and ``_`` themselves, is written as ``_XX``: a lot number like ``X^XZ^XA`` prints as text.
Labels select UTF-8 (``^CI28``), so non-ASCII names print correctly from their escaped bytes.
Barcode data comes from element strings that zint already validated (GS1 CSET 82 has no ``^``/``~``);
they are escaped for the barcode's own syntax and checked once more before being written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.core.exceptions import ValidationError

from cmlims.exceptions import InvalidInput
from cmlims.patterns import states_pattern

DOTS_PER_MM = 8  # 203 dpi printers, the common Zebra default


@states_pattern(r"^[^\^~\u0000-\u001f\u007f-\u009f]*$")  # what it refuses: ^, ~, C0 and C1 controls
def label_text_validator(value: str) -> None:
    """Model-field validator for free text that is printed on a label (product and consignee names, addresses).

    The escaping below makes such text harmless on a ZPL printer anyway; refusing ``^``/``~`` and control
    characters at entry as well means no stored record carries a printer command, and a PDF label never
    draws an invisible character."""
    bad = sorted({char for char in value or "" if char in "^~" or ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0})
    if bad:
        shown = ", ".join(char if char in "^~" else f"U+{ord(char):04X}" for char in bad)
        raise ValidationError(f"must not contain {shown}: label printer command or control characters",
                              code="label_control_character")


def mm(value: float) -> int:
    return round(value * DOTS_PER_MM)


# Anything but printable ASCII less ^ (5E), _ (5F) and ~ (7E): what escape_field writes as _XX.
_UNSAFE = re.compile(r"[^\x20-\x5d\x60-\x7d]+")


def _hex(match: re.Match) -> str:
    return "".join(f"_{byte:02X}" for byte in match.group().encode("utf-8"))


def escape_field(text: str) -> str:
    """Hex-escape ``text`` for a ``^FH`` field (indicator ``_``); most text has nothing to escape."""
    return _UNSAFE.sub(_hex, text) if _UNSAFE.search(text) else text


def text(x: int, y: int, value: str, *, height: int = 24, width: int | None = None, block: int | None = None,
         center: bool = False) -> str:
    """A text field at (x, y) dots; ``block`` wraps it in a one-line ^FB of that width (centred if asked)."""
    font = f"^A0N,{height},{width or height}"
    fb = f"^FB{block},1,0,{'C' if center else 'L'},0" if block else ""
    return f"^FO{x},{y}{font}{fb}^FH^FD{escape_field(value)}^FS"


def _check_barcode_data(data: str) -> None:
    if "^" in data or "~" in data:
        raise InvalidInput("Barcode data contains ZPL command characters.", fields={"barcode": ["^ or ~ in data"]})


def _gs1_parts(ais: Sequence[tuple[str, str]], fixed: dict[str, int | None]) -> list[tuple[str, str, bool]]:
    """(ai, value, needs_fnc1_after) — FNC1 separates a variable-length field from the next one."""
    parts = []
    for index, (ai, value) in enumerate(ais):
        last = index == len(ais) - 1
        parts.append((ai, value, fixed.get(ai) is None and not last))
    return parts


def gs1_datamatrix(x: int, y: int, ais: Sequence[tuple[str, str]], *, size: int) -> str:
    """``^BX`` ECC 200 about ``size`` dots wide, with ``_`` as escape character: ``_1`` is FNC1 (leading = GS1
    mode); a literal underscore is written ``_d095``."""
    from cmlims.documents.symbols import AI_LENGTHS, gs1_modules

    # The same validation as the PDF symbol (check digits, CSET 82, lengths: SymbolError); its size in modules
    # gives the module in dots.
    module = max(1, size // gs1_modules("datamatrix", ais))
    last = len(ais) - 1
    joined = "_1" + "".join([f"{ai}{value.replace('_', '_d095')}{'_1' if AI_LENGTHS[ai] is None and i < last else ''}"
                             for i, (ai, value) in enumerate(ais)])
    _check_barcode_data(joined)
    return f"^FO{x},{y}^BXN,{module},200,,,,_^FD{joined}^FS"


def gs1_128(x: int, y: int, ais: Sequence[tuple[str, str]], *, width: int, height: int = 200) -> str:
    """``^BC`` Code 128 in GS1 mode, about ``width`` dots wide: ``>;`` starts subset C (``>:`` subset B when the
    data is not all digits), ``>8`` is FNC1; a ``>`` in data is written ``><``."""
    from cmlims.documents.symbols import AI_LENGTHS, gs1_modules

    module = max(1, width // gs1_modules("gs1_128", ais))  # validated by zint like the PDF symbol
    digits = "".join(ai + value for ai, value in ais)
    data = [">;>8" if digits.isdigit() and len(digits) % 2 == 0 else ">:>8"]
    for ai, value, fnc1 in _gs1_parts(ais, AI_LENGTHS):
        data.append(ai + value.replace(">", "><") + (">8" if fnc1 else ""))
    joined = "".join(data)
    _check_barcode_data(joined)
    return f"^FO{x},{y}^BY{module}^BCN,{height},N,N,N^FD{joined}^FS"


def box(x: int, y: int, width: int, height: int, thickness: int = 3) -> str:
    return f"^FO{x},{y}^GB{width},{height},{thickness}^FS"


def label_head(*, width_mm: float, height_mm: float) -> str:
    """What every label starts with: ``^XA``, UTF-8, size."""
    return f"^XA^CI28^PW{mm(width_mm)}^LL{mm(height_mm)}^LH0,0"


def label_tail(copies: int = 1) -> str:
    """Quantity (``^PQ``, when more than one) and ``^XZ``."""
    return f"^PQ{copies},0,1,N^XZ\n" if copies > 1 else "^XZ\n"
