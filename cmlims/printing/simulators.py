"""Printers on loopback: a Zebra (ZPL over raw TCP, answers ~HS) and a minimal IPP office printer.

The tests start them on port 0 (the OS picks a free port, ``tests/support/printers.py``); ``make demo`` starts
both on fixed ports (``python -m cmlims.printing.simulators``, supervised by ``config/demo_runner.py``) so
the demo's printer records print somewhere real. Each is a real server on 127.0.0.1 in a daemon thread.

``ZplPrinter`` prints a format when its ``^XZ`` arrives (``printed`` holds each ``^XA…^XZ``), answers every
``~HS`` in stream order, and can be told to report paper out / head open / paused, to refuse connections
(accept and close at once), or to stall: stop reading after ``stall_after`` bytes of a connection until the
client gives up (the cut-off format is discarded, as a Zebra prints nothing without ``^XZ``).
``IppPrinter`` answers Get-Printer-Attributes (idle, or stopped with reasons) and records each Print-Job's
attributes and document.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cmlims.printing.status import host_status_format
from cmlims.printing.transports import (
    OP_GET_PRINTER_ATTRIBUTES,
    OP_PRINT_JOB,
    TAG_CHARSET,
    TAG_ENUM,
    TAG_INTEGER,
    TAG_KEYWORD,
    TAG_LANGUAGE,
    ipp_decode,
    ipp_encode,
)

# The demo's printers (cmlims/printing/demo.py points its records here); unprivileged ports on loopback,
# moved with CMLIMS_DEMO_ZPL_PORT / CMLIMS_DEMO_IPP_PORT when something else holds them.
DEMO_ZPL_PORT = int(os.environ.get("CMLIMS_DEMO_ZPL_PORT", "9109"))
DEMO_IPP_PORT = int(os.environ.get("CMLIMS_DEMO_IPP_PORT", "6319"))


class _ZplHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        printer: ZplPrinter = self.server.printer  # type: ignore[attr-defined]
        sock: socket.socket = self.request
        with printer.lock:
            printer.connections += 1
            refuse = printer.refuse
            stall_at = printer.stall_after if printer.stalls > 0 else None
            if stall_at is not None:
                printer.stalls -= 1
        if refuse:
            return
        buffer, seen = b"", 0
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            if stall_at is not None and seen + len(chunk) >= stall_at:
                buffer += chunk[:stall_at - seen]
                self._process(printer, sock, buffer)
                printer.stalled.set()
                while True:  # read nothing more: the client times out and closes
                    try:
                        if not sock.recv(65536):
                            return
                    except OSError:
                        return
            seen += len(chunk)
            with printer.lock:
                printer.received += chunk
            buffer = self._process(printer, sock, buffer + chunk)

    @staticmethod
    def _process(printer: ZplPrinter, sock: socket.socket, buffer: bytes) -> bytes:
        """Handle complete commands in order; return the unfinished rest."""
        while True:
            status_at, format_at = buffer.find(b"~HS"), buffer.find(b"^XA")
            if status_at >= 0 and (format_at < 0 or status_at < format_at):
                sock.sendall(printer.status_answer())
                buffer = buffer[status_at + 3:]
                continue
            if format_at >= 0:
                end = buffer.find(b"^XZ", format_at)
                if end < 0:
                    return buffer[format_at:]
                with printer.lock:
                    printer.printed.append(buffer[format_at:end + 3])
                buffer = buffer[end + 3:]
                continue
            return buffer[-2:]  # keep a possible start of "~HS"/"^XA"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ZplPrinter:
    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.printed: list[bytes] = []
        self.received = b""
        self.connections = 0
        self.paper_out = self.head_open = self.paused = False
        self.refuse = False
        self.stalls = 0  # how many connections stall
        self.stall_after = 0
        self.stalled = threading.Event()
        self._server = _Server(("127.0.0.1", port), _ZplHandler)
        self._server.printer = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def status_answer(self) -> bytes:
        return host_status_format(paper_out=self.paper_out, paused=self.paused, head_open=self.head_open)

    def stall(self, *, after_bytes: int, times: int = 1) -> None:
        self.stall_after, self.stalls = after_bytes, times

    def start(self) -> ZplPrinter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def offline_address() -> str:
    """host:port where nothing listens (a printer switched off): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


class _IppHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet in test output
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        printer: IppPrinter = self.server.printer  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = ipp_decode(body)
        head = [(TAG_CHARSET, "attributes-charset", "utf-8"), (TAG_LANGUAGE, "attributes-natural-language", "en")]
        if request.code == OP_GET_PRINTER_ATTRIBUTES:
            state = 5 if printer.stopped_reasons else 3
            reasons = printer.stopped_reasons or ["none"]
            answer = ipp_encode(0, request.request_id, head + [(TAG_ENUM, "printer-state", state)]
                                + [(TAG_KEYWORD, "printer-state-reasons", r) for r in reasons])
        elif request.code == OP_PRINT_JOB:
            with printer.lock:
                printer.jobs.append((self.path, request.attributes, request.data))
                job_id = len(printer.jobs)
            answer = ipp_encode(0, request.request_id, head + [(TAG_INTEGER, "job-id", job_id)])
        else:
            answer = ipp_encode(0x0501, request.request_id, head)  # server-error-operation-not-supported
        self.send_response(200)
        self.send_header("Content-Type", "application/ipp")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class IppPrinter:
    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.jobs: list[tuple[str, dict, bytes]] = []  # (path, attributes, document)
        self.stopped_reasons: list[str] = []  # e.g. ["media-empty"]: the printer reports itself stopped
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _IppHandler)
        self._server.daemon_threads = True
        self._server.printer = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"ipp://127.0.0.1:{self.port}/printers/office"

    def start(self) -> IppPrinter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> int:
    """Run a Zebra and an office printer until SIGINT/SIGTERM, reporting each label and job as it prints."""
    parser = argparse.ArgumentParser(description="cmlims demo printers on loopback")
    parser.add_argument("--zpl-port", type=int, default=DEMO_ZPL_PORT)
    parser.add_argument("--ipp-port", type=int, default=DEMO_IPP_PORT)
    args = parser.parse_args(argv)
    zebra, office = ZplPrinter(args.zpl_port).start(), IppPrinter(args.ipp_port).start()
    print(f"demo printers: Zebra at {zebra.address}, office printer at {office.address}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    seen = (0, 0)
    while not stop.is_set():
        now = (len(zebra.printed), len(office.jobs))
        if now != seen:
            print(f"demo printers: Zebra printed {now[0]} label(s), office printer {now[1]} job(s)", flush=True)
            seen = now
        time.sleep(0.5)
    zebra.stop()
    office.stop()
    print(f"demo printers stopped: Zebra printed {len(zebra.printed)} label(s), office printer "
          f"{len(office.jobs)} job(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
