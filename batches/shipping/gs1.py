"""GS1 for shipping: SSCC numbers for logistic units and reading what a barcode scanner types.

A scanner (keyboard wedge or serial) sends one of:
- the decoded element string of a GS1 DataMatrix, optionally with the symbology identifier
  ``]d2`` (``]C1`` GS1-128, ``]Q3`` GS1 QR, ``]e0`` DataBar) and with GS (ASCII 29) after every
  variable-length field that is not last: ``]d20109506000134352172812311 0LOT1<GS>21SN0001``;
- the human-readable form with parentheses ``(01)09506000134352(17)281231(10)LOT1(21)SN0001``;
- a plain vial serial, typed or read from a linear code.
``scan_parse`` returns the (21) serial, with (10) lot, (01) GTIN and (17) expiry for cross-checks.
"""

from __future__ import annotations

import datetime as dt
import re
from calendar import monthrange
from dataclasses import dataclass

from django.conf import settings
from stdnum import ean

from cmlims.documents.symbols import gs1_check_digit, sscc_compose

GS = "\x1d"
SYMBOLOGY_IDS = ("]d2", "]C1", "]Q3", "]e0")

# Fixed-length AIs a vial, carton or logistic label may carry: AI -> data length.
FIXED_LENGTH = {"00": 18, "01": 14, "02": 14, "11": 6, "13": 6, "15": 6, "16": 6, "17": 6, "20": 2}
# Variable-length AIs: AI -> maximum length (ended by GS unless last).
VARIABLE_LENGTH = {"10": 20, "21": 20, "37": 8, "240": 30, "241": 30, "250": 30, "400": 30, "91": 90, "92": 90}
# GS1 AI encodable character set 82 (the characters a (10) lot or (21) serial may hold).
CSET82 = re.compile(r"^[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]+$")


class ScanError(ValueError):
    """The scanned or typed text is not a serial nor a readable GS1 element string."""


# --- SSCC ------------------------------------------------------------------------------------------


def sscc_is_valid(sscc: str) -> bool:
    return len(sscc) == 18 and sscc.isdigit() and gs1_check_digit(sscc[:-1]) == sscc[-1]


def sscc_build(serial_reference: int, *, extension_digit: str | None = None, company_prefix: str | None = None) -> str:
    """18 digits: extension digit + GS1 company prefix + serial reference (zero-padded) + check digit.

    The prefix and extension come from settings (CMLIMS_GS1_COMPANY_PREFIX, CMLIMS_SSCC_EXTENSION_DIGIT);
    the digits are composed by the label core (``cmlims.documents.symbols.sscc_compose``, python-stdnum's
    GS1 mod 10). The serial reference must fit the 16 − prefix-length digits left: an SSCC is never reused.
    """
    extension = extension_digit if extension_digit is not None else settings.CMLIMS_SSCC_EXTENSION_DIGIT
    prefix = company_prefix if company_prefix is not None else settings.CMLIMS_GS1_COMPANY_PREFIX
    if len(extension) != 1 or not extension.isdigit():
        raise ValueError("the SSCC extension digit is one digit 0-9")
    if not (prefix.isdigit() and 6 <= len(prefix) <= 12):
        raise ValueError("a GS1 company prefix is 6 to 12 digits")
    room = 16 - len(prefix)
    if serial_reference < 0 or serial_reference >= 10**room:
        raise ValueError(f"serial reference {serial_reference} does not fit the {room} digits left by the prefix")
    return sscc_compose(extension_digit=int(extension), company_prefix=prefix, serial_reference=serial_reference)


# --- scanner input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedVial:
    serial: str
    lot: str | None = None
    gtin: str | None = None
    expiry: dt.date | None = None
    source: str = "plain"  # "plain" typed/linear serial, "gs1" element string


def _expiry_from_yymmdd(value: str) -> dt.date:
    """(17) YYMMDD; day 00 means the last day of that month. Years follow GS1's sliding window (2000-2099 here)."""
    year, month, day = 2000 + int(value[:2]), int(value[2:4]), int(value[4:6])
    if not 1 <= month <= 12:
        raise ScanError(f"(17) expiry {value}: month {month:02d} does not exist")
    if day == 0:
        day = monthrange(year, month)[1]
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise ScanError(f"(17) expiry {value}: not a date") from exc


def _split_bracketed(text: str) -> list[tuple[str, str]]:
    pairs = re.findall(r"\((\d{2,4})\)([^()]*)", text)
    if not pairs or "".join(f"({ai}){value}" for ai, value in pairs) != text:
        raise ScanError("bracketed GS1 text must be (AI)value(AI)value…")
    return pairs


def _split_element_string(text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    rest = text.lstrip(GS)  # a leading FNC1 may come through as GS
    while rest:
        ai = next((rest[:n] for n in (2, 3, 4) if rest[:n] in FIXED_LENGTH or rest[:n] in VARIABLE_LENGTH), None)
        if ai is None:
            raise ScanError(f"unknown GS1 application identifier at {rest[:4]!r}")
        rest = rest[len(ai):]
        if ai in FIXED_LENGTH:
            size = FIXED_LENGTH[ai]
            value, rest = rest[:size], rest[size:]
            if len(value) != size:
                raise ScanError(f"({ai}) needs {size} characters, got {len(value)}")
        else:
            end = rest.find(GS)
            value, rest = (rest, "") if end < 0 else (rest[:end], rest[end:])
            if len(value) > VARIABLE_LENGTH[ai]:
                # Usually a scanner that dropped the GS separators: the next AI ran into this field.
                raise ScanError(
                    f"({ai}) is longer than {VARIABLE_LENGTH[ai]} characters; is the GS separator missing?"
                )
        pairs.append((ai, value))
        rest = rest.lstrip(GS)
    return pairs


def _validated(pairs: list[tuple[str, str]]) -> ScannedVial:
    data: dict[str, str] = {}
    for ai, value in pairs:
        if ai in data:
            raise ScanError(f"({ai}) appears twice")
        if not value:
            raise ScanError(f"({ai}) is empty")
        if ai in FIXED_LENGTH and (len(value) != FIXED_LENGTH[ai] or not value.isdigit()):
            raise ScanError(f"({ai}) must be {FIXED_LENGTH[ai]} digits")
        if ai in VARIABLE_LENGTH and (len(value) > VARIABLE_LENGTH[ai] or not CSET82.match(value)):
            raise ScanError(f"({ai}) {value!r} holds characters GS1 does not allow or is too long")
        data[ai] = value
    gtin = data.get("01")
    if gtin is not None and not ean.is_valid(gtin):
        raise ScanError(f"(01) GTIN {gtin} has a wrong check digit")
    if "21" not in data:
        raise ScanError(
            "the barcode has no (21) serial: scan the vial's DataMatrix, not a carton or shipping label "
            "(and check that the scanner transmits the GS separators)"
        )
    expiry = _expiry_from_yymmdd(data["17"]) if "17" in data else None
    return ScannedVial(serial=data["21"], lot=data.get("10"), gtin=gtin, expiry=expiry, source="gs1")


def scan_parse(text: str) -> ScannedVial:
    """One scan or typed entry -> the vial serial (and lot/GTIN/expiry when the barcode carries them)."""
    # Only line-ends and spaces are stripped: GS (ASCII 29) counts as whitespace to Python's strip().
    raw = (text or "").strip(" \t\r\n")
    if not raw:
        raise ScanError("empty scan")
    prefixed = raw[:3] in SYMBOLOGY_IDS
    body = raw[3:] if prefixed else raw
    if body.startswith("("):
        return _validated(_split_bracketed(body))
    if prefixed or GS in body:
        return _validated(_split_element_string(body))
    # No prefix, no GS: an element string whose last field is the serial, e.g. (01)(17)(21) from a
    # scanner set to drop the symbology identifier; only trusted when it starts with a valid GTIN.
    if re.match(r"^01\d{14}", body) and ean.is_valid(body[2:16]):
        try:
            return _validated(_split_element_string(body))
        except ScanError:
            if len(body) > 20:
                raise  # too long to be a serial: the GS1 reason is the useful one
            # else: not an element string after all, treat it as a typed serial below
    if len(body) > 20 or not CSET82.match(body):
        raise ScanError(f"{body[:40]!r} is not a vial serial (up to 20 GS1 characters) nor a GS1 element string")
    return ScannedVial(serial=body)


def scans_split(text: str) -> list[str]:
    """A text box of scans/typed serials -> one entry per line (or space/tab: GS1 data holds no whitespace).

    Not str.split(): Python counts GS (ASCII 29) as whitespace, and GS sits inside element strings.
    """
    return [part for part in re.split(r"[ \t\r\n]+", text or "") if part]
