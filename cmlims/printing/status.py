"""Zebra host status (``~HS``): three STX…ETX strings, parsed into what stops a print.

String 1: ``aaa,b,c,dddd,eee,f,g,h,iii,j,k,l`` — b paper out, c paused, eee formats in the receive buffer,
f buffer full, j corrupt RAM, k under temperature, l over temperature. String 2:
``mmm,n,o,p,q,r,s,t,uuuuuuuu,v,www`` — o head up (open), p ribbon out, uuuuuuuu labels remaining.
String 3 is the password and RAM (not read). ZPL II Programming Guide, ~HS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STX, ETX = b"\x02", b"\x03"

# code -> (what the person is told); the order is the order in which they are reported.
PROBLEMS = {
    "paper_out": "the printer is out of labels (paper out)",
    "head_open": "the print head is open",
    "paused": "the printer is paused",
    "ribbon_out": "the ribbon is out",
    "buffer_full": "the printer's receive buffer is full",
    "corrupt_ram": "the printer reports corrupt RAM (configuration lost)",
    "under_temperature": "the print head is under temperature",
    "over_temperature": "the print head is over temperature",
}


class StatusUnreadable(ValueError):
    """The answer to ~HS was not three status strings."""


@dataclass(frozen=True)
class HostStatus:
    paper_out: bool
    paused: bool
    head_open: bool
    ribbon_out: bool
    buffer_full: bool
    corrupt_ram: bool
    under_temperature: bool
    over_temperature: bool
    formats_in_buffer: int
    labels_remaining: int

    @property
    def problems(self) -> list[str]:
        """Codes of every condition that stops printing ([] = ready)."""
        return [code for code in PROBLEMS if getattr(self, code)]

    def describe(self) -> str:
        return "; ".join(f"{code}: {PROBLEMS[code]}" for code in self.problems) or "ready"


def host_status_parse(raw: bytes) -> HostStatus:
    """Parse a complete ~HS answer; ``StatusUnreadable`` if it is not one."""
    strings = re.findall(rb"\x02([^\x02\x03]*)\x03", raw)
    if len(strings) < 3:
        raise StatusUnreadable(f"~HS answered {raw[:80]!r}, not three status strings")
    one = strings[0].decode("ascii", "replace").split(",")
    two = strings[1].decode("ascii", "replace").split(",")
    if len(one) < 12 or len(two) < 9:
        raise StatusUnreadable(f"~HS status strings too short: {strings[0]!r} {strings[1]!r}")

    def flag(value: str) -> bool:
        return value.strip() == "1"

    try:
        formats, remaining = int(one[4]), int(two[8])
    except ValueError as exc:
        raise StatusUnreadable(f"~HS counters unreadable: {exc}") from exc
    return HostStatus(
        paper_out=flag(one[1]), paused=flag(one[2]), buffer_full=flag(one[5]), corrupt_ram=flag(one[9]),
        under_temperature=flag(one[10]), over_temperature=flag(one[11]), head_open=flag(two[2]),
        ribbon_out=flag(two[3]), formats_in_buffer=formats, labels_remaining=remaining,
    )


def host_status_format(*, paper_out: bool = False, paused: bool = False, head_open: bool = False,
                       ribbon_out: bool = False, formats_in_buffer: int = 0, labels_remaining: int = 0) -> bytes:
    """An ~HS answer as a Zebra sends it (the printer simulators answer with this)."""
    one = f"030,{int(paper_out)},{int(paused)},1218,{formats_in_buffer:03d},0,0,0,000,0,0,0"
    two = f"000,0,{int(head_open)},{int(ribbon_out)},0,2,4,0,{labels_remaining:08d},1,000"
    three = "1234,0"
    return b"".join(STX + s.encode() + ETX + b"\r\n" for s in (one, two, three))
