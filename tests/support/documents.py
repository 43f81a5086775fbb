"""Test helpers that read outputs back the way a scanner and a printer would: zxing-cpp on the PDF
rendered by pypdfium2, and a ZPL tokenizer that decodes ^FH hex escapes; and waiting for a document job."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pypdfium2 as pdfium
import zxingcpp

from cmlims.documents.models import DocumentJob, JobStatus

GS = "\x1d"
FIXED = {"00": 18, "01": 14, "02": 14, "17": 6}


@dataclass
class Read:
    page: int
    format: str
    symbology: str
    text: str  # HRI form, e.g. (01)…(17)…
    raw: bytes


def read_pdf_symbols(pdf: bytes, dpi: int = 300, tiles: int = 0) -> list[Read]:
    """Every symbol on every page. ``tiles=n`` scans a sheet in overlapping n×n windows too (a scanner
    aims at one label, not a whole A4 sheet); results are then unique by (page, data)."""
    doc = pdfium.PdfDocument(pdf)
    found = []
    try:
        for index in range(len(doc)):
            image = doc[index].render(scale=dpi / 72).to_pil()
            windows = [image]
            if tiles:
                w, h = image.size
                step_x, step_y = w / (tiles + 1), h / (tiles + 1)
                windows += [image.crop((int(i * step_x), int(j * step_y), int((i + 2) * step_x), int((j + 2) * step_y)))
                            for i in range(tiles) for j in range(tiles)]
            seen = set()
            for window in windows:
                for result in zxingcpp.read_barcodes(window):
                    if tiles and result.bytes in seen:
                        continue
                    seen.add(result.bytes)
                    found.append(Read(index, result.format.name, result.symbology_identifier, result.text,
                                      result.bytes))
    finally:
        doc.close()
    return found


def pdf_page_texts(pdf: bytes) -> list[str]:
    doc = pdfium.PdfDocument(pdf)
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def parse_gs1_raw(raw: str) -> list[tuple[str, str]]:
    """Split a GS1 element string (FNC1 as GS) into (AI, value), using the fixed lengths of our AIs."""
    out = []
    rest = raw
    while rest:
        ai = rest[:2]
        if ai in FIXED:
            value, rest = rest[2:2 + FIXED[ai]], rest[2 + FIXED[ai]:]
        else:
            value, _, rest = rest[2:].partition(GS)
        out.append((ai, value))
    return out


def parse_hri(text: str) -> list[tuple[str, str]]:
    return re.findall(r"\((\d{2,4})\)([^(]*)", text)


@dataclass
class Command:
    name: str  # e.g. "^FO", "^BX", "^FD"
    args: str


_TWO_LETTER = re.compile(r"[\^~]([A-Z@][A-Z0-9@])")


def tokenize_zpl(zpl: str) -> list[Command]:
    """ZPL commands in order; ^FD data runs to the next ^FS (as a printer reads it)."""
    commands = []
    i = 0
    while i < len(zpl):
        if zpl[i] in "^~":
            name = zpl[i:i + 3]
            if name == "^FD":
                end = zpl.find("^FS", i)
                end = len(zpl) if end < 0 else end
                commands.append(Command("^FD", zpl[i + 3:end]))
                i = end
                continue
            j = i + 3
            while j < len(zpl) and zpl[j] not in "^~":
                j += 1
            commands.append(Command(name, zpl[i + 3:j].strip()))
            i = j
        else:
            i += 1
    return commands


def split_labels(zpl: str) -> list[list[Command]]:
    labels, current = [], None
    for command in tokenize_zpl(zpl):
        if command.name == "^XA":
            current = []
        elif command.name == "^XZ":
            labels.append(current)
            current = None
        elif current is not None:
            current.append(command)
    return labels


def decode_fh(data: str, indicator: str = "_") -> str:
    return re.sub(
        rf"(?:{re.escape(indicator)}[0-9A-Fa-f]{{2}})+",
        lambda m: bytes.fromhex(m.group(0).replace(indicator, "")).decode("utf-8"),
        data,
    )


def text_fields(label: list[Command]) -> list[str]:
    """Decoded data of every ^FH text field of one label."""
    out = []
    for index, command in enumerate(label):
        if command.name == "^FD" and index and label[index - 1].name == "^FH":
            out.append(decode_fh(command.args))
    return out


def barcode_fields(label: list[Command], kind: str) -> list[str]:
    """Raw ^FD data following a ^BX / ^BC command."""
    out = []
    for index, command in enumerate(label):
        if command.name == "^FD" and any(c.name == kind for c in label[max(0, index - 2):index]):
            out.append(command.args)
    return out


def zpl_datamatrix_to_gs1(data: str) -> str:
    """^BX data with escape '_' -> element string with GS separators (as a scanner would output)."""
    assert data.startswith("_1"), data
    body = data[2:].replace("_d095", "\x00")
    body = body.replace("_1", GS)
    assert "_" not in body, f"unknown escape in {data!r}"
    return body.replace("\x00", "_")


def zpl_code128_to_gs1(data: str) -> str:
    assert data[:4] in (">;>8", ">:>8"), data
    return data[4:].replace(">8", GS).replace("><", ">")


def wait_done(job_id: int, timeout: float = 120) -> DocumentJob:
    """The job once a worker (or the test) has finished it, done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = DocumentJob.objects.get(pk=job_id)
        if job.status in (JobStatus.DONE, JobStatus.FAILED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished")
