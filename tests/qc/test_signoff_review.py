"""The sign-off page reviews the audit trail by exception: what changed after creation first, grouped by
record, people by printed name, values as entered; creations folded; the full trail paged and exported."""

import csv
import io

import pytest
from django.urls import reverse

from batches.models import LotStatus
from cmlims.audit import chain_head
from qc.services.signoff import lot_sign_off
from tests.support.builders import PASSWORD, lot_at

pytestmark = pytest.mark.django_db


def staff(user):
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def officer(chain):
    return staff(chain.qc)


@pytest.mark.req("FEAT-ADMINHOME-REVIEW", "A11-9")
def test_exceptions_come_first_grouped_by_record_with_names_and_values_as_entered(client, chain, spec, officer):
    lot = lot_at(chain, LotStatus.POOLED)
    client.force_login(officer)
    text = client.get(reverse("admin:qc_lot_signoff", args=[lot.lot_number])).content.decode()
    exceptions = text[text.index("<h3>Exceptions"):text.index("<h3>Records created")]
    assert "None: every record is as it was created." in exceptions  # verifications are routine
    created = text[text.index("<h3>Records created"):]
    assert "<details><summary>CM lot " + lot.lot_number in created
    assert "Lab1 Tester" in created and "5E+2" not in text and "4E+2" not in text and "400" in created
    assert "content type" not in text and "performed by 2" not in text


@pytest.mark.req("FEAT-ADMINHOME-REVIEW")
def test_a_change_after_creation_shows_first_with_its_reason_and_the_full_trail_is_paged(client, chain, spec,
                                                                                         officer):
    from batches.services.lots import lot_update

    lot = lot_at(chain, LotStatus.POOLED)
    lot_update(lot=lot, actor=chain.lab2, reason="filter lot misread from the label", filter_lot="FL-778")
    client.force_login(officer)
    text = client.get(reverse("admin:qc_lot_signoff", args=[lot.lot_number])).content.decode()
    exceptions = text[text.index("<h3>Exceptions"):text.index("<h3>Records created")]
    assert f'<p class="record">CM lot {lot.lot_number}</p>' in exceptions
    assert "changed after creation" in exceptions and "filter lot misread from the label" in exceptions
    assert "Lab2 Tester" in exceptions and "FL-778" in exceptions
    trail = client.get(reverse("admin:qc_lot_trail", args=[lot.lot_number]))
    assert trail.status_code == 200 and "Page 1 of 1" in trail.content.decode()
    assert "filter lot misread from the label" in trail.content.decode()


@pytest.mark.req("FEAT-ADMINHOME-REVIEW")
def test_a_finished_lot_shows_no_sign_form(client, releasable, officer):
    lot_sign_off(lot=releasable, to=LotStatus.REJECTED, actor=officer, username=officer.username, password=PASSWORD,
                 reason="=HYPERLINK(\"x\") out of trend", audit_reviewed_through=chain_head().sequence)
    client.force_login(officer)
    text = client.get(reverse("admin:qc_lot_signoff", args=[releasable.lot_number])).content.decode()
    assert '<form method="post" action="#sign"' not in text and "nothing left to sign" in text
    assert "Release checklist" not in text


@pytest.mark.req("FEAT-ADMINHOME-EXPORT", "P11-11.10bc")
def test_full_trail_exports_as_csv_and_pdf(client, releasable, officer):
    lot_sign_off(lot=releasable, to=LotStatus.REJECTED, actor=officer, username=officer.username, password=PASSWORD,
                 reason="=HYPERLINK(\"x\") out of trend", audit_reviewed_through=chain_head().sequence)
    client.force_login(officer)
    url = reverse("admin:qc_lot_trail", args=[releasable.lot_number])
    exported = client.get(url, {"format": "csv"})
    assert exported["Content-Type"] == "text/csv"
    assert f"audit-trail-{releasable.lot_number}.csv" in exported["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0][:4] == ["sequence", "time (UTC)", "user", "action"]
    reasons = [row[8] for row in rows[1:]]
    assert "'=HYPERLINK(\"x\") out of trend" in reasons and not any(r.startswith("=") for r in reasons)
    assert any(row[2] == "Qc1 Tester" for row in rows[1:])
    pdf = client.get(url, {"format": "pdf"})
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


@pytest.mark.req("FEAT-ADMINHOME-REVIEW", "RULE-TIME-2")
def test_late_entries_are_reported_once_per_kind_of_record_person_and_reason(client, chain, spec, officer):
    from cmlims.models import AuditEntry
    from tests.support.builders import LATE

    lot = lot_at(chain, LotStatus.POOLED)  # the builders record past steps: late entries with their reason
    late = AuditEntry.objects.filter(late_entry=True)
    assert late.exists()
    client.force_login(officer)
    text = client.get(reverse("admin:qc_lot_signoff", args=[lot.lot_number])).content.decode()
    section = text[text.index("<h3>Late entries"):text.index("<h3>Records created")]
    assert LATE in section and "Lab1 Tester" in section
    # one row per kind of record, person and reason, however many entries
    rows = section.count("<tr>") - 1
    assert 0 < rows < late.count()
    exceptions = text[text.index("<h3>Exceptions"):text.index("<h3>Late entries")]
    assert LATE not in exceptions  # the reason for lateness is not a change to review twice
