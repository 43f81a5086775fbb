"""The transports against real sockets on loopback: ~HS first, refusals named, stall -> timeout -> retry that
resumes after the last confirmed label (no label printed twice), IPP Print-Job of the PDF."""

import pytest

from cmlims.printing.addresses import ipp_address_parse, zpl_address_parse
from cmlims.printing.status import host_status_format, host_status_parse
from cmlims.printing.transports import PrinterNotReady, PrinterOffline, Timeouts, ipp_print, zpl_send
from tests.support.printers import offline_address

FAST = Timeouts(connect=1, send=0.5, retries=2, backoff=0.01)
LABELS = [f"^XA^FO10,10^FH^FDlabel {n}^FS^XZ".encode() for n in range(1, 4)]


@pytest.mark.req("FEAT-PRINT-2")
def test_host_status_is_parsed_from_the_three_strings():
    status = host_status_parse(host_status_format(paper_out=True, head_open=True, formats_in_buffer=2))
    assert status.problems == ["paper_out", "head_open"]
    assert status.formats_in_buffer == 2 and not status.paused
    assert host_status_parse(host_status_format()).problems == []


@pytest.mark.req("FEAT-PRINT-2")
def test_labels_reach_the_printer_each_confirmed_by_its_status_answer(zebra):
    confirmed = []
    assert zpl_send(zpl_address_parse(zebra.address), LABELS, timeouts=FAST, on_confirmed=confirmed.append) == 3
    assert zebra.printed == LABELS
    assert confirmed == [1, 2, 3]
    assert zebra.received.startswith(b"~HS^XA")  # status asked before the first label


@pytest.mark.req("FEAT-PRINT-2")
def test_an_offline_printer_fails_after_the_retries_naming_the_address():
    address = offline_address()
    with pytest.raises(PrinterOffline) as caught:
        zpl_send(zpl_address_parse(address), LABELS, timeouts=FAST)
    assert address in caught.value.message and "attempt 3" in caught.value.message
    assert caught.value.extra["confirmed"] == 0


@pytest.mark.req("FEAT-PRINT-2")
@pytest.mark.parametrize("condition", ["paper_out", "head_open", "paused"])
def test_a_printer_that_is_not_ready_is_refused_and_the_condition_named(zebra, condition):
    setattr(zebra, condition, True)
    with pytest.raises(PrinterNotReady) as caught:
        zpl_send(zpl_address_parse(zebra.address), LABELS, timeouts=FAST)
    assert caught.value.extra["problems"] == [condition]
    assert condition in caught.value.message
    assert zebra.printed == []
    assert zebra.connections == 1  # a refusal is an answer: not retried


@pytest.mark.req("FEAT-PRINT-2")
def test_a_stall_mid_job_times_out_and_the_retry_prints_each_label_exactly_once(zebra):
    # The printer stops reading in the middle of the second label; the sender gives up after the send
    # timeout, reconnects, asks ~HS and sends from the second label on.
    zebra.stall(after_bytes=len(b"~HS") + len(LABELS[0]) + len(b"~HS") + 10)
    assert zpl_send(zpl_address_parse(zebra.address), LABELS, timeouts=FAST) == 3
    assert zebra.stalled.is_set()
    assert zebra.connections == 2
    assert zebra.printed == LABELS


@pytest.mark.req("FEAT-PRINT-2")
def test_paper_out_mid_job_stops_after_the_labels_already_taken(zebra):
    class RunsOutAfterFirst:
        def __init__(self):
            self.answers = 0

        def __call__(self):
            self.answers += 1
            zebra.paper_out = self.answers >= 2  # the answer after the first label says paper out
            return host_status_format(paper_out=zebra.paper_out)

    zebra.status_answer = RunsOutAfterFirst()
    with pytest.raises(PrinterNotReady) as caught:
        zpl_send(zpl_address_parse(zebra.address), LABELS, timeouts=FAST)
    assert "after 1 of 3 labels" in caught.value.message
    assert zebra.printed == LABELS[:1]


@pytest.mark.req("FEAT-PRINT-3")
def test_ipp_print_job_carries_the_pdf(office_printer):
    pdf = b"%PDF-1.4\n% test document\n%%EOF\n"
    job_id = ipp_print(ipp_address_parse(office_printer.address), pdf, uri=office_printer.address,
                       job_name="CM26-0001 labels", user="lab1", timeouts=FAST)
    assert job_id == 1
    ((path, attributes, document),) = office_printer.jobs
    assert path == "/printers/office" and document == pdf
    assert attributes["document-format"] == ["application/pdf"]
    assert attributes["job-name"] == ["CM26-0001 labels"]
    assert attributes["requesting-user-name"] == ["lab1"]


@pytest.mark.req("FEAT-PRINT-3")
def test_a_stopped_ipp_printer_is_refused_with_its_reasons(office_printer):
    office_printer.stopped_reasons = ["media-empty", "door-open"]
    with pytest.raises(PrinterNotReady) as caught:
        ipp_print(ipp_address_parse(office_printer.address), b"%PDF-1.4", uri=office_printer.address,
                  job_name="x", user="lab1", timeouts=FAST)
    assert caught.value.extra["problems"] == ["media-empty", "door-open"]
    assert office_printer.jobs == []


@pytest.mark.req("FEAT-PRINT-1")
@pytest.mark.parametrize("kind,address,problem", [
    ("zpl", "10.0.4.21", "must be host:port"),
    ("zpl", "10.0.4.21:99999", "between 1 and 65535"),
    ("zpl", "bad host:9100", "not a host name"),
    ("ipp", "http://printhost/printers/a", "ipp:// or ipps://"),
    ("ipp", "ipp:///printers/a", "not a host name"),
])
def test_addresses_are_checked_per_kind(kind, address, problem):
    parse = zpl_address_parse if kind == "zpl" else ipp_address_parse
    with pytest.raises(ValueError, match=problem):
        parse(address)
    assert ipp_address_parse("ipp://printhost/printers/a").port == 631
    assert zpl_address_parse("zebra-3.lab:9100").port == 9100
