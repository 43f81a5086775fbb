from tests.support.printers import office_printer, zebra  # noqa: F401 - the loopback printer fixtures
