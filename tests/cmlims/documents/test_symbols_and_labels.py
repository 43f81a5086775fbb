"""Every symbol read back by a real decoder; ZPL parsed like a printer would; injection refused."""

import datetime as dt

import pytest
from stdnum import ean

from batches.documents.labels import CartonLabel, VialLabel
from batches.shipping.documents import ShippingLabel
from cmlims.documents import labels, symbols
from tests.support.documents import (
    GS,
    barcode_fields,
    parse_gs1_raw,
    parse_hri,
    pdf_page_texts,
    read_pdf_symbols,
    split_labels,
    text_fields,
    zpl_code128_to_gs1,
    zpl_datamatrix_to_gs1,
)

GTIN = "09506000134352"
SSCC = "095060001343528884"
EXPIRY = dt.date(2028, 12, 31)


def vial(serial: str, **overrides) -> VialLabel:
    values = {
        "product_name": "Secretome CM 50 mg",
        "gtin": GTIN,
        "lot": "CM26-0042",
        "expiry": EXPIRY,
        "serial": serial,
        "storage": "Store at 2-8 °C",
        "content": "50 mg lyophilised",
        "manufacturer": "cmlims demo site",
        "status": "QUARANTINE",
    }
    values.update(overrides)
    return VialLabel(**values)


def carton(**overrides) -> CartonLabel:
    values = {
        "product_name": "Secretome CM",
        "gtin": GTIN,
        "lot": "CM26-0042",
        "expiry": EXPIRY,
        "count": 24,
        "storage": "2-8 °C",
        "content": "24 × 50 mg",
        "manufacturer": "cmlims demo site",
        "carton": "3",
    }
    values.update(overrides)
    return CartonLabel(**values)


def shipping(**overrides) -> ShippingLabel:
    values = {
        "sscc": SSCC,
        "ship_from": ["cmlims demo site", "1 Lab Road"],
        "ship_to": ["Clinic A", "2 Ward St"],
        "contents": "Secretome CM vials",
        "count": 24,
        "lot": "CM26-0042",
        "expiry": EXPIRY,
        "handling": "Keep upright",
        "temperature": "2-8 °C",
        "reference": "SH-1",
    }
    values.update(overrides)
    return ShippingLabel(**values)


def test_check_digits_match_stdnum():
    assert symbols.gs1_check_digit(GTIN[:-1]) == GTIN[-1]
    assert ean.is_valid(GTIN)
    sscc = symbols.sscc_compose(extension_digit=0, company_prefix="9506000", serial_reference=134352888)
    assert sscc == SSCC


@pytest.mark.parametrize(
    ("ais", "field"),
    [
        ([("01", "09506000134353")], "ai_01"),  # wrong check digit (zint refuses it too: see below)
        ([("17", "281331")], "ai_17"),  # no 13th month
        ([("01", GTIN), ("10", "CM^XA")], "ai_10"),  # ^ is not GS1 CSET 82
        ([("01", GTIN), ("21", "x" * 21)], "ai_21"),  # too long
        ([("17", "28123")], "ai_17"),
    ],
)
def test_invalid_gs1_data_is_refused_with_the_field(ais, field):
    with pytest.raises(symbols.SymbolError) as caught:
        symbols.gs1_datamatrix(ais)
    assert field in caught.value.extra["fields"]


@pytest.mark.req("FEAT-LABELS")
def test_zint_refuses_what_the_python_checks_refuse_first():
    # The ZPL path asks zint once per shape of data; the checks that run on every label must not be looser.
    for text in ("[01]09506000134353", "[17]281331"):
        with pytest.raises(symbols.SymbolError):
            symbols._zint(symbols.zint.Symbology.DATAMATRIX, text, gs1_mode=True)


@pytest.mark.req("FEAT-LABELS")
@pytest.mark.parametrize("kind", ["datamatrix", "gs1_128"])
def test_symbol_size_by_shape_of_data_is_what_zint_gives_for_each_label(kind):
    import random
    import string

    rng = random.Random(14)
    fill = {"0": string.digits, "A": string.ascii_uppercase, "a": string.ascii_lowercase}
    lots = ["CM00-0000", "AA00", "a0a0.A", "0000000", "Aa_0/0-a"]
    serials = ["000000", "AA00000000", "0A0A0A", "000000000000"]
    symbols._MODULES.clear()
    for _ in range(400):
        lot, serial = ("".join(rng.choice(fill.get(c, c)) for c in rng.choice(pattern))
                       for pattern in (lots, serials))
        gtin = "".join(rng.choice(string.digits) for _ in range(13))
        ais = [("01", gtin + ean.calc_check_digit(gtin)), ("17", "281231"), ("10", lot), ("21", serial)]
        if kind == "gs1_128":  # 48 characters at most: what a carton's or a pallet's GS1-128 carries
            ais = [ais[0], ais[2]]
        symbology, gs1_mode = symbols._KINDS[kind]
        direct = symbols._zint(symbology, symbols.element_string(ais), gs1_mode=gs1_mode).width
        assert symbols.gs1_modules(kind, ais) == direct, ais
    assert len(symbols._MODULES) <= len(lots) * len(serials)  # zint was asked once per shape, not per label


@pytest.mark.req("FEAT-LABELS")
@pytest.mark.parametrize("kind", ["datamatrix", "gs1_128"])
def test_symbol_runs_read_from_zints_bitmap_are_zints_vector_rectangles(kind):
    # PDF labels draw runs read from zint's module bitmap; zint's own vector output (which also merges rows)
    # must darken the same modules.
    def modules(rectangles, scale: float, row_height: float) -> set[tuple[int, int]]:
        return {(row, column) for r in rectangles
                for row in range(round(r.y / scale / row_height), round((r.y + r.height) / scale / row_height))
                for column in range(round(r.x / scale), round((r.x + r.width) / scale))}

    row_paths: dict = {}
    for n in range(1, 40):
        ais = ([("01", GTIN), ("17", "281231"), ("10", "CM26-0042"), ("21", f"SN{n:06d}")] if kind == "datamatrix"
               else [("00", symbols.sscc_compose(extension_digit=0, company_prefix="9506000", serial_reference=n))])
        symbology, gs1_mode = symbols._KINDS[kind]
        direct = symbols._zint(symbology, symbols.element_string(ais), gs1_mode=gs1_mode)
        direct.buffer_vector()
        if kind == "datamatrix":
            symbol, alone = symbols.gs1_datamatrix(ais, row_paths=row_paths), symbols.gs1_datamatrix(ais)
        else:
            symbol = alone = symbols.gs1_128(ais)
        row_height = symbol.height / symbol.rows
        drawn = modules(symbol.rectangles, 1, row_height)
        assert drawn == modules(direct.vector.rectangles, direct.vector.width / direct.width, row_height), ais
        assert len(drawn) > symbol.width * symbol.rows / 3  # a real symbol, not an empty one
        assert symbol.path == alone.path  # rows shared between the labels of a job change nothing
    assert row_paths or kind == "gs1_128"  # the labels of a job did share rows (GS1-128 has one)


@pytest.mark.req("FEAT-LABELS")
def test_zpl_checks_every_label_even_when_its_shape_is_known():
    good = vial("000001")
    labels.render_zpl(labels.TEMPLATES["vial"], [good])
    with pytest.raises(symbols.SymbolError) as caught:  # same shape, wrong check digit
        labels.render_zpl(labels.TEMPLATES["vial"], [good, vial("000002", gtin="09506000134353")])
    assert "ai_01" in caught.value.extra["fields"]


@pytest.mark.parametrize("layout", ["page", "a4"])
@pytest.mark.req("FEAT-LABELS", "1271-370")
def test_vial_labels_read_back_as_gs1_datamatrix(layout):
    items = [vial(f"{n:06d}") for n in range(1, 13)]
    pdf = labels.render_pdf(labels.TEMPLATES["vial"], items, layout=layout)
    reads = read_pdf_symbols(pdf, dpi=400 if layout == "a4" else 300, tiles=4 if layout == "a4" else 0)
    assert len(reads) == len(items)
    by_serial = {}
    for read in reads:
        assert read.format == "DataMatrix"
        assert read.symbology == "]d2"  # GS1 DataMatrix (FNC1 first)
        ais = parse_gs1_raw(read.raw.decode())
        assert parse_hri(read.text) == ais
        by_serial[dict(ais)["21"]] = ais
    for item in items:
        ais = by_serial[item.serial]
        assert ais == [("01", GTIN), ("17", "281231"), ("10", "CM26-0042"), ("21", item.serial)]
        assert ean.is_valid(dict(ais)["01"])
    texts = "".join(pdf_page_texts(pdf))
    assert texts.count("QUARANTINE") == len(items)
    assert "(01)09506000134352(17)281231(10)CM26-0042(21)000001" in texts


def test_vial_raw_data_separates_variable_fields_with_fnc1():
    (read,) = read_pdf_symbols(labels.render_pdf(labels.TEMPLATES["vial"], [vial("SN-7")]))
    assert read.raw.decode() == f"01{GTIN}17281231" + f"10CM26-0042{GS}21SN-7"


@pytest.mark.req("RULE-4")
def test_copies_give_one_page_each_and_final_labels_have_no_quarantine_text():
    pdf = labels.render_pdf(labels.TEMPLATES["vial"], [vial("000009", status="", copies=3)])
    pages = pdf_page_texts(pdf)
    assert len(pages) == 3 and not any("QUARANTINE" in p for p in pages)
    assert len(read_pdf_symbols(pdf)) == 3


def test_carton_label_reads_back_with_contained_gtin_and_count():
    (read,) = read_pdf_symbols(labels.render_pdf(labels.TEMPLATES["carton"], [carton()]))
    assert read.symbology == "]d2"
    assert parse_gs1_raw(read.raw.decode()) == [("02", GTIN), ("37", "24"), ("17", "281231"), ("10", "CM26-0042")]


def test_shipping_label_reads_back_as_gs1_128_sscc():
    pdf = labels.render_pdf(labels.TEMPLATES["shipping"], [shipping()])
    (read,) = read_pdf_symbols(pdf)
    assert read.format == "Code128"
    assert read.symbology == "]C1"  # GS1-128
    assert parse_gs1_raw(read.raw.decode()) == [("00", SSCC)]
    assert ean.calc_check_digit(SSCC[:-1]) == SSCC[-1]
    text = pdf_page_texts(pdf)[0]
    assert "Clinic A" in text and "SHIP FROM" in text and "2-8 °C" in text


@pytest.mark.req("FEAT-LABELS")
def test_zpl_one_label_per_item_with_datamatrix_data_and_fnc1_escapes():
    items = [vial("000001"), vial("000002", lot="CM_26")]
    zpl = labels.render_zpl(labels.TEMPLATES["vial"], items)
    parsed = split_labels(zpl)
    assert len(parsed) == 2 and zpl.count("^XA") == 2 and zpl.count("^XZ") == 2
    for label, item in zip(parsed, items, strict=True):
        assert any(c.name == "^BX" and c.args.endswith(",_") for c in label)
        (data,) = barcode_fields(label, "^BX")
        element = zpl_datamatrix_to_gs1(data)
        assert parse_gs1_raw(element) == [("01", GTIN), ("17", "281231"), ("10", item.lot), ("21", item.serial)]
        assert "QUARANTINE" in text_fields(label)
    (data,) = barcode_fields(parsed[1], "^BX")
    assert "CM_d09526" in data  # a literal underscore is not read as the escape character


def test_zpl_shipping_label_is_gs1_128():
    (label,) = split_labels(labels.render_zpl(labels.TEMPLATES["shipping"], [shipping()]))
    (data,) = barcode_fields(label, "^BC")
    assert data.startswith(">;>8")
    assert parse_gs1_raw(zpl_code128_to_gs1(data)) == [("00", SSCC)]


@pytest.mark.parametrize("evil", ["X^XZ^XA^FO0,0^FDPWNED^FS", "~JR~PS", "A_5E_7E", "Ünïcödé ^~ 50 µl"])
def test_zpl_field_data_cannot_inject_commands(evil):
    benign = split_labels(labels.render_zpl(labels.TEMPLATES["shipping"], [shipping()]))[0]
    item = shipping(ship_to=[evil, "2 Ward St"], contents=evil, handling=evil)
    zpl = labels.render_zpl(labels.TEMPLATES["shipping"], [item])
    assert zpl.count("^XA") == 1 and zpl.count("^XZ") == 1 and "~" not in zpl
    (label,) = split_labels(zpl)
    assert [c.name for c in label] == [c.name for c in benign]  # same command structure
    assert sum(evil in field for field in text_fields(label)) == 3  # printed verbatim as text


def test_zpl_refuses_barcode_data_a_printer_would_execute():
    with pytest.raises(symbols.SymbolError):
        labels.render_zpl(labels.TEMPLATES["vial"], [vial("1^XZ")])
    with pytest.raises(symbols.SymbolError):
        labels.render_pdf(labels.TEMPLATES["vial"], [vial("1~JR")])


def test_unknown_template_and_empty_list_are_input_errors():
    from cmlims.exceptions import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        labels.template_get("pallet")
    assert "template" in caught.value.extra["fields"]
    with pytest.raises(InvalidInput):
        labels.render_pdf(labels.TEMPLATES["vial"], [])


@pytest.mark.parametrize(("name", "item"), [("vial", vial("000001")), ("carton", carton(status="QUARANTINE")),
                                            ("shipping", shipping())])
def test_zpl_fields_stay_on_the_label_and_off_its_rules(name, item):
    """Both outputs come from one layout: a text cell that crosses a rule in ZPL crosses it in the PDF too."""
    (label,) = split_labels(labels.render_zpl(labels.TEMPLATES[name], [item]))
    size = {c.name: int(c.args) for c in label if c.name in ("^PW", "^LL")}
    cells, rules, origin = [], [], None
    for command in label:
        if command.name == "^FO":
            origin = tuple(map(int, command.args.split(",")))
        elif command.name == "^A0":
            height = int(command.args.split(",")[1])
            cells.append((origin[1], origin[1] + height))
            assert origin[0] >= 0 and origin[1] + height <= size["^LL"]
        elif command.name == "^FB":
            assert origin[0] + int(command.args.split(",")[0]) <= size["^PW"]
        elif command.name == "^GB":
            width, height, thickness = map(int, command.args.split(","))
            assert origin[0] + width <= size["^PW"] and origin[1] + height <= size["^LL"]
            if height <= thickness:
                rules.append(origin[1])
    assert cells and (rules or name != "shipping")
    assert not [(top, bottom, y) for top, bottom in cells for y in rules if top < y < bottom]
