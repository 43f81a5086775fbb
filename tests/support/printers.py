"""The loopback printers as pytest fixtures (the servers themselves live in ``cmlims.printing.simulators``,
which ``make demo`` also runs)."""

from __future__ import annotations

import pytest

from cmlims.printing.simulators import IppPrinter, ZplPrinter, offline_address

__all__ = ["IppPrinter", "ZplPrinter", "offline_address", "office_printer", "zebra"]


@pytest.fixture
def zebra():
    printer = ZplPrinter().start()
    yield printer
    printer.stop()


@pytest.fixture
def office_printer():
    printer = IppPrinter().start()
    yield printer
    printer.stop()
