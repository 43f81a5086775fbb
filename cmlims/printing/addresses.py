"""Printer addresses: ``host:port`` for ZPL (raw TCP, usually 9100), an ``ipp://`` / ``ipps://`` URL for IPP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_HOST = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$")


# What the API schema says each kind's address is (a part of what the parsers take: host names and IPv4, a
# port from 1 to 9999, an IPP path of URL-safe characters); the property test holds every match parseable.
_SCHEMA_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?"
_SCHEMA_PORT = r"[1-9][0-9]{0,3}"
ZPL_ADDRESS_PATTERN = fr"^{_SCHEMA_HOST}:{_SCHEMA_PORT}$"
IPP_ADDRESS_PATTERN = fr"^ipps?://{_SCHEMA_HOST}(?::{_SCHEMA_PORT})?(?:/[A-Za-z0-9._~-]*)*$"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str = "/"
    tls: bool = False


def _host_port(host: str, port: str | int | None, default: int) -> tuple[str, int]:
    if not host or not _HOST.match(host):
        raise ValueError(f"{host!r} is not a host name or IP address")
    try:
        number = default if port in (None, "") else int(port)
    except ValueError:
        raise ValueError(f"port {port!r} is not a number") from None
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is not between 1 and 65535")
    return host.strip("[]"), number


def zpl_address_parse(address: str) -> Endpoint:
    """``host:port`` (port required, so a typo does not silently print on 9100 of the wrong host)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port:
        raise ValueError("must be host:port, e.g. 10.0.4.21:9100")
    return Endpoint(*_host_port(host, port, 9100))


def ipp_address_parse(address: str) -> Endpoint:
    """``ipp://host[:port]/path`` (port 631 when omitted) or ``ipps://`` for IPP over TLS."""
    parts = urlsplit(address.strip())
    if parts.scheme not in ("ipp", "ipps"):
        raise ValueError("must be an ipp:// or ipps:// URL, e.g. ipp://printhost:631/printers/office")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the URL's port is not a number between 1 and 65535") from None
    host, number = _host_port(parts.hostname or "", port, 631)
    return Endpoint(host, number, parts.path or "/", tls=parts.scheme == "ipps")


def address_parse(kind: str, address: str) -> Endpoint:
    return zpl_address_parse(address) if kind == "zpl" else ipp_address_parse(address)
