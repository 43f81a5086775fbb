"""Sending to printers: ZPL over raw TCP with ~HS status, PDF over IPP (Print-Job, RFC 8011).

ZPL: connect (connect timeout), ask ``~HS`` and refuse a printer that reports paper out, head open, paused
(or another stop condition); then send label by label, each followed by ``~HS``. The printer reads its input
in order, so its answer confirms that label's bytes arrived. A connection that stalls or drops (send timeout)
is retried from the first unconfirmed label after asking ``~HS`` again, so a retry never prints a confirmed
label twice (a label cut off mid-format is incomplete, and a Zebra prints only on ``^XZ``).

IPP: ``Get-Printer-Attributes`` first (a ``stopped`` printer is refused with its state reasons), then one
``Print-Job`` with the PDF. Only failures before the Print-Job was sent are retried (after that the printer
may have the job: retrying could print it twice). The encoder is the few bytes RFC 8010 needs: no IPP
package on the registry is maintained and synchronous.
"""

from __future__ import annotations

import http.client
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cmlims.exceptions import ApplicationError
from cmlims.printing.addresses import Endpoint
from cmlims.printing.status import HostStatus, StatusUnreadable, host_status_parse

STATUS_QUERY = b"~HS"


class PrinterError(ApplicationError):
    """A print that did not happen, with the printer's reason (the job's error)."""

    status_code = 409
    code = "printer_failed"


class PrinterNotReady(PrinterError):
    code = "printer_not_ready"


class PrinterOffline(PrinterError):
    code = "printer_offline"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    send: float = 10.0  # per label: send it and read the printer's status answer
    retries: int = 2  # further connections after the first
    backoff: float = 0.5  # seconds before a retry (doubled each time)


def _read_status(sock: socket.socket) -> HostStatus:
    data = b""
    while data.count(b"\x03") < 3:
        chunk = sock.recv(1024)
        if not chunk:
            raise ConnectionError("the printer closed the connection")
        data += chunk
    return host_status_parse(data)


def _refuse(status: HostStatus, where: str) -> None:
    if status.problems:
        raise PrinterNotReady(f"Printer not ready {where}: {status.describe()}.", problems=status.problems)


def zpl_send(
    endpoint: Endpoint, formats: Sequence[bytes], *, timeouts: Timeouts = Timeouts(), start: int = 0,
    on_confirmed: Callable[[int], None] = lambda n: None,
) -> int:
    """Send ``formats`` (one ``^XA…^XZ`` each) from index ``start``; returns how many are confirmed (all).

    Raises ``PrinterNotReady`` (naming the conditions) or ``PrinterOffline`` after the retries.
    """
    confirmed = start
    errors: list[str] = []
    for attempt in range(timeouts.retries + 1):
        if attempt:
            time.sleep(timeouts.backoff * 2 ** (attempt - 1))
        try:
            with socket.create_connection((endpoint.host, endpoint.port), timeout=timeouts.connect) as sock:
                sock.settimeout(timeouts.send)
                sock.sendall(STATUS_QUERY)
                _refuse(_read_status(sock), "before printing")
                while confirmed < len(formats):
                    sock.sendall(formats[confirmed] + STATUS_QUERY)
                    status = _read_status(sock)
                    confirmed += 1
                    on_confirmed(confirmed)
                    if confirmed < len(formats):
                        _refuse(status, f"after {confirmed} of {len(formats)} labels")
            return confirmed
        except (OSError, StatusUnreadable) as exc:  # refused, unreachable, timed out, dropped, garbled
            errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc or 'timed out'}")
    raise PrinterOffline(
        f"Printer {endpoint.host}:{endpoint.port} did not take the job ({confirmed} of {len(formats)} labels "
        f"confirmed): {'; '.join(errors)}.", confirmed=confirmed,
    )


# --- IPP ------------------------------------------------------------------------------------------------

IPP_VERSION = b"\x01\x01"
OP_PRINT_JOB, OP_GET_PRINTER_ATTRIBUTES = 0x0002, 0x000B
TAG_OPERATION, TAG_END = 0x01, 0x03
TAG_INTEGER, TAG_ENUM = 0x21, 0x23
TAG_TEXT, TAG_NAME, TAG_KEYWORD, TAG_URI, TAG_CHARSET, TAG_LANGUAGE, TAG_MIME = (
    0x41, 0x42, 0x44, 0x45, 0x47, 0x48, 0x49)
PRINTER_STOPPED = 5


@dataclass
class IppMessage:
    """A decoded IPP message: status (response) or operation (request) code, and attributes by name."""

    code: int
    request_id: int
    attributes: dict[str, list] = field(default_factory=dict)
    data: bytes = b""


def ipp_encode(code: int, request_id: int, attributes: Sequence[tuple[int, str, object]], data: bytes = b"",
               *, group: int = TAG_OPERATION) -> bytes:
    """One IPP message with a single attribute group (RFC 8010 §3.1); values are str or int."""
    out = bytearray(IPP_VERSION + struct.pack(">HI", code, request_id) + bytes([group]))
    for tag, name, value in attributes:
        raw = struct.pack(">i", value) if isinstance(value, int) else str(value).encode("utf-8")
        out += bytes([tag]) + struct.pack(">H", len(name)) + name.encode() + struct.pack(">H", len(raw)) + raw
    return bytes(out) + bytes([TAG_END]) + data


def ipp_decode(raw: bytes) -> IppMessage:
    """Decode an IPP message (every group merged; integers and enums as int, the rest as text)."""
    if len(raw) < 9:
        raise ValueError("IPP message shorter than its header")
    code, request_id = struct.unpack(">HI", raw[2:8])
    message = IppMessage(code, request_id)
    pos, name = 8, ""
    while pos < len(raw):
        tag = raw[pos]
        pos += 1
        if tag == TAG_END:
            break
        if tag < 0x10:  # a new attribute group
            continue
        (name_len,) = struct.unpack(">H", raw[pos:pos + 2])
        name = raw[pos + 2:pos + 2 + name_len].decode() or name  # empty name: another value of the last one
        pos += 2 + name_len
        (value_len,) = struct.unpack(">H", raw[pos:pos + 2])
        value = raw[pos + 2:pos + 2 + value_len]
        pos += 2 + value_len
        decoded = struct.unpack(">i", value)[0] if tag in (TAG_INTEGER, TAG_ENUM) and value_len == 4 else \
            value.decode("utf-8", "replace")
        message.attributes.setdefault(name, []).append(decoded)
    message.data = raw[pos:]
    return message


def _ipp_call(endpoint: Endpoint, body: bytes, timeout: float) -> IppMessage:
    conn_class = http.client.HTTPSConnection if endpoint.tls else http.client.HTTPConnection
    conn = conn_class(endpoint.host, endpoint.port, timeout=timeout)
    try:
        conn.request("POST", endpoint.path, body=body, headers={"Content-Type": "application/ipp"})
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise PrinterError(f"IPP printer answered HTTP {response.status} {response.reason}.")
        return ipp_decode(payload)
    finally:
        conn.close()


def _operation_attributes(uri: str, user: str) -> list[tuple[int, str, object]]:
    return [(TAG_CHARSET, "attributes-charset", "utf-8"), (TAG_LANGUAGE, "attributes-natural-language", "en"),
            (TAG_URI, "printer-uri", uri), (TAG_NAME, "requesting-user-name", user)]


def ipp_print(endpoint: Endpoint, pdf: bytes, *, uri: str, job_name: str, user: str,
              timeouts: Timeouts = Timeouts()) -> int:
    """Submit the PDF; returns the printer's job id. Raises PrinterNotReady / PrinterOffline / PrinterError."""
    errors: list[str] = []
    for attempt in range(timeouts.retries + 1):
        if attempt:
            time.sleep(timeouts.backoff * 2 ** (attempt - 1))
        try:
            state = _ipp_call(endpoint, ipp_encode(OP_GET_PRINTER_ATTRIBUTES, 1, _operation_attributes(uri, user) + [
                (TAG_KEYWORD, "requested-attributes", "printer-state")]), timeouts.connect)
            break
        except (OSError, ValueError) as exc:
            errors.append(f"attempt {attempt + 1}: {type(exc).__name__}: {exc or 'timed out'}")
    else:
        raise PrinterOffline(f"IPP printer {uri} does not answer: {'; '.join(errors)}.")
    reasons = [r for r in state.attributes.get("printer-state-reasons", []) if r != "none"]
    if state.attributes.get("printer-state", [0])[0] == PRINTER_STOPPED:
        raise PrinterNotReady(f"IPP printer {uri} is stopped: {', '.join(reasons) or 'no reason given'}.",
                              problems=reasons)
    body = ipp_encode(OP_PRINT_JOB, 2, _operation_attributes(uri, user) + [
        (TAG_NAME, "job-name", job_name), (TAG_MIME, "document-format", "application/pdf")], pdf)
    try:
        answer = _ipp_call(endpoint, body, timeouts.send)
    except (OSError, ValueError) as exc:
        raise PrinterOffline(f"IPP printer {uri} did not confirm the job: {type(exc).__name__}: {exc}.") from exc
    if answer.code > 0x00FF:  # 0x0000-0x00FF: successful-ok and its variants
        message = "; ".join(answer.attributes.get("status-message", [])) or "no message"
        raise PrinterError(f"IPP printer {uri} refused the job (status 0x{answer.code:04x}: {message}).")
    return int(answer.attributes.get("job-id", [0])[0])
