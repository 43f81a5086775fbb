"""SSCC generation and scanner input parsing (pure logic)."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import ean, gs1_128

from batches.shipping.gs1 import GS, ScanError, scan_parse, scans_split, sscc_build, sscc_is_valid

GTIN = "09506000134352"


def test_sscc_known_example():
    # GS1 General Specifications example SSCC: 1 0614141 123456789 7
    assert sscc_build(123456789, extension_digit="1", company_prefix="0614141") == "106141411234567897"


def test_sscc_uses_settings(settings):
    settings.CMLIMS_GS1_COMPANY_PREFIX = "9506000"
    settings.CMLIMS_SSCC_EXTENSION_DIGIT = "3"
    sscc = sscc_build(42)
    assert sscc.startswith("39506000000000042") and len(sscc) == 18


@given(
    serial=st.integers(min_value=0, max_value=10**9 - 1),
    extension=st.sampled_from("0123456789"),
)
def test_sscc_check_digit_agrees_with_stdnum(serial, extension):
    sscc = sscc_build(serial, extension_digit=extension, company_prefix="9506000")
    assert len(sscc) == 18 and sscc.isdigit()
    assert ean.calc_check_digit(sscc[:-1]) == sscc[-1]
    assert gs1_128.info("00" + sscc) == {"00": sscc}
    assert sscc_is_valid(sscc)
    wrong = sscc[:-1] + str((int(sscc[-1]) + 1) % 10)
    assert not sscc_is_valid(wrong)


@pytest.mark.parametrize(
    ("serial", "prefix", "extension"),
    [(10**9, "9506000", "0"), (-1, "9506000", "0"), (1, "12345", "0"), (1, "9506000", "x"), (1, "95060A0", "0")],
)
def test_sscc_refuses_what_does_not_fit(serial, prefix, extension):
    with pytest.raises(ValueError):
        sscc_build(serial, extension_digit=extension, company_prefix=prefix)


# --- scanner input -----------------------------------------------------------------------------------

ELEMENT = f"01{GTIN}17281231" + "10CM26-0042" + GS + "21SN000001"


@pytest.mark.parametrize(
    "text",
    [
        "]d2" + ELEMENT,  # decoder with symbology identifier
        ELEMENT,  # identifier switched off
        GS + ELEMENT,  # leading FNC1 transmitted as GS
        "]d2" + ELEMENT + "\r\n",  # scanner suffix
        f"(01){GTIN}(17)281231(10)CM26-0042(21)SN000001",  # human-readable text
        f"]d2(01){GTIN}(17)281231(10)CM26-0042(21)SN000001",
        f"]d2{GS}21SN000001{GS}10CM26-0042{GS}01{GTIN}17281231",  # any AI order
        "]C1" + ELEMENT,  # GS1-128 symbology identifier
        "]Q3" + ELEMENT,  # GS1 QR symbology identifier
        "]d2" + ELEMENT + GS,  # scanner that ends every field with GS
    ],
)
@pytest.mark.req("FEAT-SCANNER")
def test_scan_element_strings(text):
    scanned = scan_parse(text)
    assert scanned.serial == "SN000001"
    assert scanned.lot == "CM26-0042"
    assert scanned.gtin == GTIN
    assert scanned.expiry == dt.date(2028, 12, 31)
    assert scanned.source == "gs1"


def test_scan_serial_last_without_gs():
    scanned = scan_parse(f"01{GTIN}1728123121SN000001")
    assert (scanned.serial, scanned.lot, scanned.gtin) == ("SN000001", None, GTIN)


def test_scan_expiry_day_00_is_last_day_of_month():
    assert scan_parse(f"(01){GTIN}(17)280200(21)A1").expiry == dt.date(2028, 2, 29)


@pytest.mark.parametrize("text", ["SN000001", "  SN000001\n", "CM26-0042-0001"])
def test_scan_plain_serial(text):
    scanned = scan_parse(text)
    assert scanned.serial == text.strip()
    assert scanned.lot is None and scanned.gtin is None and scanned.source == "plain"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("]d2" + f"01{GTIN}17281231" + "10CM26-0042-XY21SN000001", "GS separator missing"),  # GS dropped
        ("]d2" + f"01{GTIN}17281231" + "10CM2621SN000001", "transmits the GS separators"),
        (f"]d201{GTIN[:-1]}3" + GS + "21SN1", "check digit"),
        (f"(01){GTIN}(17)281231(10)LOT1", "no (21) serial"),
        ("(00)106141411234567897", "no (21) serial"),  # a shipping label scanned by mistake
        (f"]d201{GTIN}17281331{GS}21SN1", "month 13"),
        (f"]d201{GTIN}17280230{GS}21SN1", "280230: not a date"),
        (f"]d201{GTIN}21" + "A" * 21, "GS separator missing"),  # serial over 20 characters
        (f"(01){GTIN}(10)LOT{GS}1(21)SN1", "does not allow"),  # GS inside the parentheses form is not dropped
        ("]d221SN#1", "does not allow"),  # outside GS1 character set 82
        ("]d299ABC", "unknown GS1 application identifier"),
        ("(01)123(21)SN", "(01) must be 14 digits"),
        ("(21)SN 1", "does not allow"),
        ("THIS-SERIAL-IS-FAR-TOO-LONG-TO-BE-GS1", "not a vial serial"),
        ("serial with space", "not a vial serial"),
        ("(21)A(21)B", "appears twice"),
        ("(01 )x", "bracketed"),
    ],
)
@pytest.mark.req("FEAT-SCANNER")
def test_scan_refusals_name_the_problem(text, problem):
    with pytest.raises(ScanError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        scan_parse(text)


def test_scans_split_keeps_gs_inside_entries():
    text = f"SN1\n]d2{ELEMENT}\r\n  SN3\tSN4\n\n"
    assert scans_split(text) == ["SN1", "]d2" + ELEMENT, "SN3", "SN4"]


serials = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./_", min_size=1, max_size=20)
lots = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=20)


@given(serial=serials, lot=lots, bracketed=st.booleans(), prefix=st.booleans())
def test_scan_roundtrip(serial, lot, bracketed, prefix):
    if bracketed:
        text = f"(01){GTIN}(17)281231(10){lot}(21){serial}"
    else:
        text = f"01{GTIN}17281231" + f"10{lot}" + GS + f"21{serial}"
    scanned = scan_parse(("]d2" if prefix else "") + text)
    assert (scanned.serial, scanned.lot, scanned.gtin) == (serial, lot, GTIN)
