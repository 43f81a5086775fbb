"""Our scanner-input parser (``batches.shipping.gs1.scan_parse``) against biip on the same inputs.

Not part of ``make bench`` (biip is not a dependency: README "Design decisions" says why). Run it with biip
installed in a scratch environment: ``pip install biip && python benchmarks/compare_gs1_biip.py``.

"biip" below is the thinnest ``scan_parse`` built on it that keeps our contract: our split between a plain
serial and a GS1 element string (biip reads a typed "10000042" as a (10) lot), then biip's parser, then our
rules it has no notion of ((21) required, an AI only once, the GTIN check digit it reports but accepts).
Each input has the one right answer; the table shows who gets it, and how the refusal reads.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from biip import ParseError, gs1_messages  # noqa: E402
from stdnum import ean  # noqa: E402

from batches.shipping.gs1 import GS, SYMBOLOGY_IDS, ScanError, ScannedVial, scan_parse  # noqa: E402

GTIN = "09506000134352"
ELEMENT = f"01{GTIN}17281231" + "10CM26-0042" + GS + "21SN000001"
FULL = ("SN000001", "CM26-0042", GTIN, dt.date(2028, 12, 31))
REFUSED = "refused"

CASES: list[tuple[str, str, tuple | str]] = [
    ("]d2 element string", "]d2" + ELEMENT, FULL),
    ("no symbology identifier", ELEMENT, FULL),
    ("leading FNC1 as GS", GS + ELEMENT, FULL),
    ("scanner CR LF suffix", "]d2" + ELEMENT + "\r\n", FULL),
    ("]C1 GS1-128", "]C1" + ELEMENT, FULL),
    ("]Q3 GS1 QR", "]Q3" + ELEMENT, FULL),
    ("trailing GS", "]d2" + ELEMENT + GS, FULL),
    ("parentheses", f"(01){GTIN}(17)281231(10)CM26-0042(21)SN000001", FULL),
    ("]d2 + parentheses", f"]d2(01){GTIN}(17)281231(10)CM26-0042(21)SN000001", FULL),
    ("any AI order", f"]d2{GS}21SN000001{GS}10CM26-0042{GS}01{GTIN}17281231", FULL),
    ("serial last, no GS", f"01{GTIN}1728123121SN000001", ("SN000001", None, GTIN, dt.date(2028, 12, 31))),
    ("(17) day 00", f"(01){GTIN}(17)280200(21)A1", ("A1", None, GTIN, dt.date(2028, 2, 29))),
    ("typed serial", "SN000001", ("SN000001", None, None, None)),
    ("typed serial of digits", "10000042", ("10000042", None, None, None)),
    ("GS dropped, lot runs long", "]d2" + f"01{GTIN}17281231" + "10CM26-0042-XY21SN000001", REFUSED),
    ("GS dropped, lot swallows (21)", "]d2" + f"01{GTIN}17281231" + "10CM2621SN000001", REFUSED),
    ("(21) over 20 characters", f"]d201{GTIN}21" + "A" * 21, REFUSED),
    ("GTIN check digit wrong", f"]d201{GTIN[:-1]}3" + GS + "21SN1", REFUSED),
    ("(17) month 13", f"]d201{GTIN}17281331{GS}21SN1", REFUSED),
    ("(17) 30 February", f"]d201{GTIN}17280230{GS}21SN1", REFUSED),
    ("carton label, no (21)", f"(01){GTIN}(17)281231(10)LOT1", REFUSED),
    ("SSCC label", "(00)106141411234567897", REFUSED),
    ("AI not on our labels", "]d299ABC", REFUSED),
    ("(01) too short", "(01)123(21)SN", REFUSED),
    ("space inside (21)", "(21)SN 1", REFUSED),
    ("GS inside bracketed (10)", f"(01){GTIN}(10)LOT{GS}1(21)SN1", REFUSED),
    ("character outside set 82", "]d221SN#1", REFUSED),
    ("(21) twice", "(21)A(21)B", REFUSED),
    ("broken parentheses", "(01 )x", REFUSED),
    ("too long for a serial", "THIS-SERIAL-IS-FAR-TOO-LONG-TO-BE-GS1", REFUSED),
]


def scan_parse_biip(text: str) -> ScannedVial:
    raw = (text or "").strip(" \t\r\n")
    body = raw[3:] if raw[:3] in SYMBOLOGY_IDS else raw
    looks_gs1 = (raw[:3] in SYMBOLOGY_IDS or GS in body or body.startswith("(")
                 or (body[:2] == "01" and ean.is_valid(body[2:16])))
    if not looks_gs1:
        return scan_parse(raw)  # our plain-serial rules: biip has no notion of a typed serial
    try:
        if body.startswith("("):
            message = gs1_messages.GS1Message.parse_hri(body)
        else:
            message = gs1_messages.GS1Message.parse(body)
    except ParseError as exc:
        raise ScanError(str(exc)) from exc
    data = {}
    for element in message.element_strings:
        if element.ai.ai in data:
            raise ScanError(f"({element.ai.ai}) appears twice")
        data[element.ai.ai] = element
    if "01" in data and data["01"].gtin_error:
        raise ScanError(data["01"].gtin_error)
    if "21" not in data:
        raise ScanError("the barcode has no (21) serial")
    return ScannedVial(serial=data["21"].value, lot=data["10"].value if "10" in data else None,
                       gtin=data["01"].value if "01" in data else None,
                       expiry=data["17"].date if "17" in data else None, source="gs1")


def outcome(parse, text: str) -> tuple[tuple | str, str]:
    try:
        s = parse(text)
    except ScanError as exc:
        return REFUSED, str(exc)
    return (s.serial, s.lot, s.gtin, s.expiry), ""


def main() -> int:
    wrong = {"ours": [], "biip": []}
    for label, text, expected in CASES:
        print(f"- {label}: {text!r}")
        for name, parse in (("ours", scan_parse), ("biip", scan_parse_biip)):
            got, message = outcome(parse, text)
            ok = got == expected
            if not ok:
                wrong[name].append(label)
            print(f"    {name}: {'right' if ok else 'WRONG'} {got if got != REFUSED else ''}{message[:110]}")
    for name, labels in wrong.items():
        print(f"{name} wrong on {len(labels)} of {len(CASES)}: {', '.join(labels) or '-'}")
    count = 10_000
    for label, text in (("]d2 element string", "]d2" + ELEMENT), ("parentheses", CASES[7][1]),
                        ("typed serial", "SN000001")):
        times = {name: min(timeit.repeat(lambda p=parse, t=text: p(t), number=count, repeat=3))
                 for name, parse in (("ours", scan_parse), ("biip", scan_parse_biip))}
        print(f"{label}: ours {times['ours'] * 1000:.0f} ms, biip {times['biip'] * 1000:.0f} ms per {count:,} parses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
