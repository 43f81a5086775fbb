"""The label renderers' output pinned byte for byte (PDF and ZPL) before they were made cheaper (issue 14,
B3/B4): a speed-up that changes one byte fails here.

PDFs are rendered in ReportLab's invariant mode (fixed date and document id) and compared by the SHA-256 of the
file with its Flate streams inflated and their /Length entries dropped, so the pin depends on the drawing, not
on the zlib build; ZPL by the SHA-256 of its text. Each set mixes what changes a label's operators: status or
not, copies, a text that shrinks, one cut with "…", non-ASCII, the A4 sheet layout, every template.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import zlib

import pytest
from reportlab import rl_config
from reportlab.lib.rl_accel import asciiBase85Decode

from batches.documents.labels import CartonLabel, VialLabel
from batches.shipping.documents import ShippingLabel
from cmlims.documents import labels

GTIN = "09506000134352"
_STREAM = re.compile(rb"<<([^>]*)>>\nstream\r?\n(.*?)\r?\n?endstream", re.S)


def _vials(count: int, **overrides) -> list[VialLabel]:
    values = {"product_name": "MSC-CM lyophilisate 1 mL", "gtin": GTIN, "lot": "CM26-0042",
              "expiry": dt.date(2027, 6, 30), "storage": "Store at -25 to -15 °C", "content": "1 mL fill, freeze-dried",
              "manufacturer": "cmlims demo site", "status": "QUARANTINE"}
    values.update(overrides)
    return [VialLabel(serial=f"CM260042{n:06d}", **values) for n in range(count)]


def _mixed_vials() -> list[VialLabel]:
    return [*_vials(30), *_vials(5, status="", lot="CM26-0043"), *_vials(3, copies=2, expiry=dt.date(2028, 1, 31)),
            *_vials(2, product_name="Mesenchymal stromal cell conditioned medium, lyophilised, 1 mL"),
            *_vials(2, product_name="Mesenchymal stromal cell conditioned medium, lyophilised, 1 mL, for research "
                                    "use only, not for use in humans"),
            *_vials(2, product_name="Milieu conditionné — cellules stromales", storage="≤ -15 °C, à l'abri")]


def _cartons() -> list[CartonLabel]:
    base = {"product_name": "Secretome CM", "gtin": GTIN, "lot": "CM26-0042", "expiry": dt.date(2028, 12, 31),
            "storage": "2-8 °C", "content": "24 × 50 mg", "manufacturer": "cmlims demo site"}
    return [CartonLabel(count=24, carton=str(n), status="QUARANTINE" if n % 2 else "", **base) for n in range(1, 7)]


def _shipping() -> list[ShippingLabel]:
    return [ShippingLabel(sscc="095060001343528884", ship_from=["cmlims demo site", "1 Lab Road"],
                          ship_to=["Clinic A", "2 Ward St", "Ward 7", "Town"], contents="Secretome CM vials", count=24,
                          lot="CM26-0042", expiry=dt.date(2028, 12, 31), handling="Keep upright",
                          temperature="2-8 °C", reference="SH-1"),
            ShippingLabel(sscc="095060001343528891", ship_from=["cmlims demo site"], ship_to=["Clinique B"],
                          contents="Secretome CM vials", count=5, lot="CM26-0043", expiry=None, handling="",
                          temperature="-25 to -15 °C", copies=2)]


def _samples(name: str) -> list:
    return [labels.TEMPLATES[name].sample(n) for n in range(1, 4)]


SETS = {"vial-1000": lambda: ("vial", _vials(1000)), "vial-mixed": lambda: ("vial", _mixed_vials()),
        "carton": lambda: ("carton", _cartons()), "shipping": lambda: ("shipping", _shipping()),
        "vial-samples": lambda: ("vial", _samples("vial")), "carton-samples": lambda: ("carton", _samples("carton")),
        "shipping-samples": lambda: ("shipping", _samples("shipping"))}

# SHA-256 of the output of the renderers as they were before B3/B4's speed-ups (commit 292b119's code).
PDF = {
    ("carton", "a4"): "87f5c3c85a50aeaffa60918ffd74abc5176e954c82773b1a35c3b1560766af39",
    ("carton", "page"): "50d7564ffddecb16f206c532bc891ff9fa8773398090531a7e929366b3a9d392",
    ("carton-samples", "page"): "cbe3f7acb3dedbd4515a74ea98c1b1a59f872d505e254f67bdd65c5fe2f88cbe",
    ("shipping", "a4"): "3a0a0b8d5758e673ef5c79a05cee875ceae8ee36481f48e4877e0c0dd30f7463",
    ("shipping", "page"): "3999ac0317a9d5a535f3cdbd9c9132b478d2b63e40caf2e0c3b580457c292392",
    ("shipping-samples", "a4"): "02576dde58bde10d723cbb1ec6d615bece121b88750dc10214fb7b9c6b45d350",
    ("vial-1000", "page"): "77b721abec15bde2a662043331135faf0cf592824708977d159609266864f1e8",
    ("vial-mixed", "a4"): "cc854df76b883641d0e4aabbc535669691b8b1c421ebd01e6b083104cd21851b",
    ("vial-mixed", "page"): "4cc5e4f0a32b81cd7c3a40181a5b4bf51b08a77fc46dc48998abf347f68bae9b",
    ("vial-samples", "page"): "ffa5c315715e94cf0fe07ee86f0e50ee2891c8b688d04211b7c6bdc9e8e21804",
}
ZPL = {
    "carton": "a6338db1e551f94c8014c15d2ee6bf2d2b4c8fd926a25d7bcb0c5bcc2755b9b3",
    "carton-samples": "6dc5ac694de7d728b4abd853a59ed8d5bda9f64b055e7405609f6f8a56188df9",
    "shipping": "3a2e92fe50f96008bb9e4de4b87620863f7cc62cb599ec77247f2c640f94836f",
    "shipping-samples": "90d0f3239e0588a22e262e21f2a163b8475035ba93133bfc645cc7c4b9f01702",
    "vial-1000": "65016992d1b999379cc02362de2c9950005c56f9c48b05c06a18dd1b5f827cf0",
    "vial-mixed": "7592dfb84c2c48bdfeef2604f1be7f481c77e202f5c6c725957bcc57a933cc6f",
    "vial-samples": "e12ebd471185604e398ed82e9461bf5df897df09115fbe3033c4b6f4b840d42a",
}


def normalised_digest(pdf: bytes) -> str:
    """SHA-256 of ``pdf`` with every stream decoded (ASCII85, Flate) and what follows from the encoded bytes
    dropped: the streams' /Length, the cross-reference offsets and the document id (a digest of the file)."""
    inflated = 0

    def decode(match: re.Match) -> bytes:
        nonlocal inflated
        head, data = match[1], match[2]
        if b"/ASCII85Decode" in head:
            data = asciiBase85Decode(data)
        if b"/FlateDecode" in head:
            data = zlib.decompress(data)
            inflated += 1
        return b"<<" + re.sub(rb"/Length \d+", b"", head) + b">>\nstream\n" + data + b"\nendstream"

    body = _STREAM.sub(decode, pdf)
    assert inflated, "no compressed stream found: the normalisation no longer reads this PDF"
    body = re.sub(rb"\nxref\n.*?\ntrailer\n", b"\nxref\ntrailer\n", body, flags=re.S)
    body = re.sub(rb"/ID \n?\[<[0-9a-f]+><[0-9a-f]+>\]", b"/ID", body)
    body = re.sub(rb"startxref\n\d+\n", b"startxref\n", body)
    return hashlib.sha256(body).hexdigest()


@pytest.fixture
def invariant(monkeypatch):
    monkeypatch.setattr(rl_config, "invariant", 1)


@pytest.mark.req("FEAT-LABELS")
@pytest.mark.parametrize(("name", "layout"), sorted(PDF))
def test_pdf_labels_are_byte_for_byte_what_they_were(invariant, name, layout):
    template, items = SETS[name]()
    pdf = labels.render_pdf(labels.TEMPLATES[template], items, layout=layout)
    assert pdf == labels.render_pdf(labels.TEMPLATES[template], items, layout=layout), "invariant mode: one output"
    assert normalised_digest(pdf) == PDF[name, layout]


@pytest.mark.req("FEAT-LABELS")
@pytest.mark.parametrize("name", sorted(ZPL))
def test_zpl_labels_are_byte_for_byte_what_they_were(name):
    template, items = SETS[name]()
    assert hashlib.sha256(labels.render_zpl(labels.TEMPLATES[template], items).encode()).hexdigest() == ZPL[name]
