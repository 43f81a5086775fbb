"""The demo's printers: the simulators `make demo` supervises are real servers (a ZPL format sent over TCP is
confirmed by ~HS; an IPP Print-Job gets a job id), and the demo's printer records point at them."""

import io
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

from cmlims.printing.addresses import ipp_address_parse, zpl_address_parse
from cmlims.printing.models import Printer, PrinterKind
from cmlims.printing.transports import PrinterOffline, Timeouts, ipp_print, zpl_send
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[3]
FAST = Timeouts(connect=1, send=2, retries=0, backoff=0.01)


def _until_up(send, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return send()
        except PrinterOffline:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.req("FEAT-PRINT-DEMO")
def test_the_demo_printers_print_over_zpl_and_ipp():
    zpl_port, ipp_port = free_port(), free_port()
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "cmlims.printing.simulators", "--zpl-port", str(zpl_port), "--ipp-port", str(ipp_port)],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        formats = [b"^XA^FO20,20^FDCM26-0001^FS^XZ", b"^XA^FO20,20^FDCM26-0002^FS^XZ"]
        assert _until_up(lambda: zpl_send(zpl_address_parse(f"127.0.0.1:{zpl_port}"), formats, timeouts=FAST)) == 2
        uri = f"ipp://127.0.0.1:{ipp_port}/printers/office"
        assert ipp_print(ipp_address_parse(uri), b"%PDF-1.4\n%%EOF\n", uri=uri, job_name="demo", user="lab1",
                         timeouts=FAST) == 1
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0
    assert "Zebra printed 2 label(s)" in output and "office printer 1 job(s)" in output


@pytest.mark.req("FEAT-PRINT-DEMO")
@pytest.mark.django_db
def test_the_demo_printer_records_point_at_the_simulators():
    from cmlims.printing.simulators import DEMO_IPP_PORT, DEMO_ZPL_PORT

    call_command("seed_demo", stdout=io.StringIO())
    printers = {(p.kind, p.stock_width_mm, p.stock_height_mm): p for p in Printer.objects.filter(enabled=True)}
    assert printers[(PrinterKind.ZPL, 50, 25)].address == f"127.0.0.1:{DEMO_ZPL_PORT}"  # vial labels
    assert printers[(PrinterKind.ZPL, Decimal("101.6"), Decimal("152.4"))].address == f"127.0.0.1:{DEMO_ZPL_PORT}"
    assert printers[(PrinterKind.IPP, 210, 297)].address == f"ipp://127.0.0.1:{DEMO_IPP_PORT}/printers/office"
