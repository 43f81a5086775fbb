"""Printers: records (``Printer``), the print outcome of document jobs (``PrintDispatch``), the ZPL-over-TCP and
IPP transports and Zebra ``~HS`` status parsing. Product-independent: apps hand it bytes and a label size.

Public face: ``cmlims.printing.services`` (printer_create, printer_update, printer_for_labels),
``cmlims.printing.selectors``, ``cmlims.printing.transports`` and ``cmlims.printing.status``.
"""
