"""The trail in the admin: read-only list with filters (query count fixed), per-object history with old → new,
timelines, voiding instead of deleting, and a reason asked for once a record is released."""

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from batches.shipping.admin import STEPS
from cmlims import roles
from cmlims.admin import ReadOnlyAdmin, SignatureForm
from cmlims.admin_filters import distinct_values_indexed, skip_scan_sql
from cmlims.admin_paging import AuditTrailPaginator
from cmlims.audit import Action, audited_bulk_create, audited_create, audited_update
from cmlims.documents.models import DocumentJob, LabelPrint
from cmlims.esign.models import Signature, SigningFailure
from cmlims.models import ApiToken, AuditCheckpoint, AuditEntry
from qc.admin import SignOffForm
from tests.auditfixture.models import FixtureRecord, FixtureSample
from tests.support.builders import PASSWORD
from tests.support.queries import admin_request_reads

pytestmark = pytest.mark.django_db


@pytest.fixture
def qc(make_user):
    return make_user("qc1", roles.QC_OFFICER, is_staff=True)


@pytest.fixture
def qc_client(qc):
    client = Client()
    assert client.login(username="qc1", password=PASSWORD)
    return client


@pytest.fixture
def admin_client(make_user):
    make_user("root", is_superuser=True, is_staff=True)
    client = Client()
    assert client.login(username="root", password=PASSWORD)
    return client


def make_records(actor, count: int, prefix: str = "R"):
    return [audited_create(FixtureRecord, actor=actor, name=f"{prefix}{i}", quantity=i) for i in range(count)]


@pytest.mark.req("FEAT-PERF-AUDIT-LIST")
def test_the_trail_list_runs_a_fixed_number_of_queries(qc_client, qc, django_assert_num_queries):
    make_records(qc, 5, "A")
    qc_client.get("/admin/cmlims/auditentry/")  # warm caches (content types, permissions in the session)
    # The fixed reads (session, none when cached; user with its roles, as the admin site refuses integration
    # accounts; its permissions in one query), then the page's own four: the count (the chain's bounds), the
    # page, the object types (an index skip scan) and the accounts' user names of the filters.
    with django_assert_num_queries(admin_request_reads() + 4) as small:
        assert qc_client.get("/admin/cmlims/auditentry/").status_code == 200
    make_records(qc, 60, "B")
    with django_assert_num_queries(len(small.captured_queries)):
        response = qc_client.get("/admin/cmlims/auditentry/")
    assert response.status_code == 200 and "B59" in response.content.decode()


@pytest.mark.req("FEAT-AUDIT-VIEW", via="browser")
def test_the_trail_filters_by_object_type_user_action_and_time_and_searches_ids(qc_client, qc, make_user):
    other = make_user("lab1", roles.LAB_STAFF)
    (mine,) = make_records(qc, 1, "Mine")
    audited_create(FixtureRecord, actor=other, name="Theirs")
    audited_update(mine, actor=qc, quantity=42)

    def listed(query: str) -> str:
        response = qc_client.get(f"/admin/cmlims/auditentry/?{query}")
        assert response.status_code == 200, query
        return response.content.decode()

    page = listed("object_type=auditfixture.fixturerecord&action=changed")
    assert "Mine" in page and "Theirs" not in page
    page = listed("object_type=auditfixture.fixturerecord&username=lab1")
    assert "Theirs" in page and "Mine" not in page
    utc = "+00:00:00%2B00:00"
    page = listed(f"object_type=auditfixture.fixturerecord&at__gte=2000-01-01{utc}&at__lt=2999-01-01{utc}")
    assert "Theirs" in page and "Mine" in page
    assert "Theirs" not in listed("object_type=auditfixture.fixturerecord&at__gte=2999-01-01+00:00:00%2B00:00")
    page = listed(f"q={mine.pk}&object_type=auditfixture.fixturerecord")
    assert "Mine" in page and "Theirs" not in page
    assert "Theirs" in listed("q=Theirs")


@pytest.mark.req("P11-11.10e", "FEAT-AUDIT-VIEW")
def test_the_trail_is_read_only_even_for_the_superuser(admin_client, qc):
    (record,) = make_records(qc, 1)
    entry = AuditEntry.objects.filter(object_type="auditfixture.fixturerecord").last()
    assert admin_client.get("/admin/cmlims/auditentry/add/").status_code == 403
    assert admin_client.get(f"/admin/cmlims/auditentry/{entry.pk}/delete/").status_code == 403
    admin_client.post(f"/admin/cmlims/auditentry/{entry.pk}/change/", {"reason": "forged"})
    entry.refresh_from_db()
    assert entry.reason == ""
    page = admin_client.get(f"/admin/cmlims/auditentry/{entry.pk}/change/").content.decode()
    assert entry.hash in page  # viewable, with its chain hash


@pytest.mark.req("P11-11.10e", "A11-9", "FEAT-AUDIT-VIEW")
def test_history_shows_each_change_with_old_and_new_values(admin_client, qc):
    (record,) = make_records(qc, 1)
    audited_update(record, actor=qc, quantity=17, reason="recount")
    page = admin_client.get(f"/admin/auditfixture/fixturerecord/{record.pk}/history/").content.decode()
    assert "Audit trail: R0" in page
    assert "quantity" in page and ">0<" in page and ">17<" in page and "recount" in page
    assert reverse("admin:cmlims_timeline", args=["auditfixture.fixturerecord", record.pk]) in page


@pytest.mark.req("FEAT-AUDIT-VIEW")
def test_the_timeline_covers_the_object_and_everything_registered_under_it(admin_client, qc):
    record, other = make_records(qc, 2)
    samples = audited_bulk_create(FixtureSample, [FixtureSample(record=record, label=f"S{i}") for i in range(3)],
                                  actor=qc)
    audited_bulk_create(FixtureSample, [FixtureSample(record=other, label="elsewhere")], actor=qc)
    audited_update(record, actor=qc, quantity=5)

    from cmlims.timeline import timeline_for

    timeline = timeline_for(record)
    entries = list(timeline.entries)
    assert [e.sequence for e in entries] == sorted(e.sequence for e in entries)
    assert {(e.object_type, e.object_id) for e in entries} == {
        ("auditfixture.fixturerecord", str(record.pk)),
        *(("auditfixture.fixturesample", str(s.pk)) for s in samples),
    }
    page = admin_client.get(f"/admin/cmlims/auditentry/timeline/auditfixture.fixturerecord/{record.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "S2" in html and "elsewhere" not in html
    assert "(later change)" in html  # the quantity change after the record's creation
    assert admin_client.get("/admin/cmlims/auditentry/timeline/auditfixture.fixturerecord/999999/").status_code == 404
    assert admin_client.get("/admin/cmlims/auditentry/timeline/nosuch.model/1/").status_code == 404


@pytest.mark.req("README-NO-DELETE", "A11-9")
def test_audited_admin_offers_no_delete_but_void_with_a_reason(admin_client, qc):
    (record,) = make_records(qc, 1)
    assert admin_client.get(f"/admin/auditfixture/fixturerecord/{record.pk}/delete/").status_code == 403
    change = admin_client.get(f"/admin/auditfixture/fixturerecord/{record.pk}/change/").content.decode()
    void_url = f"/admin/auditfixture/fixturerecord/{record.pk}/void/"
    assert void_url in change
    response = admin_client.post(void_url, {"reason": ""})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    response = admin_client.post(void_url, {"reason": "duplicate entry"})
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.is_voided and record.void_reason == "duplicate entry"
    entry = AuditEntry.objects.filter(action=Action.VOIDED).last()
    assert entry.username == "root" and entry.reason == "duplicate entry"
    assert admin_client.get(void_url).status_code == 403  # already voided


@pytest.mark.req("A11-9", "RULE-8")
def test_a_released_record_needs_a_reason_to_change_in_the_admin(admin_client, qc):
    (record,) = make_records(qc, 1)
    audited_update(record, actor=qc, released=True)
    url = f"/admin/auditfixture/fixturerecord/{record.pk}/change/"
    form = {"name": "R0", "quantity": "3", "released": "on", "change_reason": "",
            "samples-TOTAL_FORMS": "0", "samples-INITIAL_FORMS": "0"}
    response = admin_client.post(url, form)
    assert response.status_code == 200 and "A reason is required" in response.content.decode()
    record.refresh_from_db()
    assert record.quantity == 0
    response = admin_client.post(url, {**form, "change_reason": "transcription error"})
    assert response.status_code == 302
    entry = AuditEntry.objects.filter(object_type="auditfixture.fixturerecord", object_id=str(record.pk)).last()
    assert entry.changes == {"quantity": [0, 3]} and entry.reason == "transcription error"


def test_history_and_timeline_pages_run_a_fixed_number_of_queries(admin_client, qc):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    record, bigger = make_records(qc, 2)
    audited_bulk_create(FixtureSample, [FixtureSample(record=record, label="S0")], actor=qc)
    audited_bulk_create(FixtureSample, [FixtureSample(record=bigger, label=f"S{i}") for i in range(40)], actor=qc)
    for i in range(20):
        audited_update(bigger, actor=qc, quantity=i + 1)

    def count(url: str) -> int:
        admin_client.get(url)  # warm the session and content-type caches
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(url).status_code == 200
        return len(captured.captured_queries)

    for page in ("history", "timeline"):
        urls = [f"/admin/auditfixture/fixturerecord/{r.pk}/history/" if page == "history" else
                f"/admin/cmlims/auditentry/timeline/auditfixture.fixturerecord/{r.pk}/" for r in (record, bigger)]
        assert count(urls[0]) == count(urls[1]), page


def test_no_admin_of_an_audited_model_offers_delete(rf, make_user):
    """Every registered admin of an AuditedModel (any app, inlines too) refuses delete, even to the superuser."""
    from cmlims.audit import AuditedModel

    root = make_user("root", is_superuser=True, is_staff=True)
    request = rf.get("/admin/")
    request.user = root
    checked = []
    for model, model_admin in admin.site._registry.items():
        if not issubclass(model, AuditedModel):
            continue
        checked.append(model._meta.label)
        assert not model_admin.has_delete_permission(request), model._meta.label
        assert "delete_selected" not in model_admin.get_actions(request), model._meta.label
        for inline in (cls(model, admin.site) for cls in model_admin.inlines):
            if issubclass(inline.model, AuditedModel):
                assert not inline.has_delete_permission(request), (model._meta.label, inline.model._meta.label)
    assert {"batches.CMLot", "batches.Vial", "batches.Harvest"} <= set(checked)


def test_records_written_only_by_services_share_one_read_only_admin(admin_client, qc):
    from django.contrib import admin

    service_only = [AuditEntry, AuditCheckpoint, ApiToken, Signature, SigningFailure, DocumentJob, LabelPrint]
    assert [m for m in service_only if not isinstance(admin.site._registry[m], ReadOnlyAdmin)] == []
    failure = SigningFailure.objects.create(user=qc, consecutive=2)
    url = f"/admin/esign/signingfailure/{failure.pk}/change/"
    admin_client.post(url, {"consecutive": "0"})
    failure.refresh_from_db()
    assert failure.consecutive == 2 and admin_client.get(url).status_code == 200  # viewable, never reset by hand
    assert admin_client.get("/admin/esign/signingfailure/add/").status_code == 403


def test_every_signing_page_asks_with_the_one_signature_form():
    signing = [STEPS["ship"].form, STEPS["receive"].form, SignOffForm]
    assert all(issubclass(form, SignatureForm) for form in signing)
    form = STEPS["ship"].form({"courier": "c", "tracking_number": "t", "username": "u", "password": " pw "})
    assert form.is_valid() and form.cleaned_data["password"] == " pw "  # a password is taken as typed


@pytest.mark.req("FEAT-PERF-AUDIT-LIST")
def test_the_trail_list_counts_and_offers_filters_without_reading_the_trail(qc_client, qc, make_user):
    """The whole trail's count from its bounds is the real count; the object types are the real distinct ones;
    the user filter offers the accounts (a name typed at a failed login is found by searching for it)."""
    make_user("lab1", roles.LAB_STAFF)
    make_records(qc, 3)
    page = qc_client.get("/admin/cmlims/auditentry/").content.decode()
    assert f"{AuditEntry.objects.count()} audit entries" in page and "+ audit entries" not in page
    assert distinct_values_indexed(AuditEntry, "object_type") == list(
        AuditEntry.objects.order_by("object_type").values_list("object_type", flat=True).distinct())
    assert 'href="?username=lab1"' in page and 'href="?username=qc1"' in page
    assert "_facets" not in page


@pytest.mark.req("FEAT-PERF-AUDIT-LIST")
@pytest.mark.parametrize("values", [[], ["b"], ["c", "a", "b", "a", "c", "c"]])
def test_the_type_filters_skip_scan_runs_on_sqlite_too(values):
    """CI's suite runs on PostgreSQL; the demo on SQLite, which refused the first form of this statement."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (kind TEXT)")
    db.execute("CREATE INDEX t_kind ON t (kind)")
    db.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
    assert [row[0] for row in db.execute(skip_scan_sql('"t"', '"kind"'))] == sorted(set(values))


class CappedAt(AuditTrailPaginator):
    count_cap = 4


@pytest.mark.req("FEAT-PERF-AUDIT-LIST")
def test_a_filtered_trail_is_counted_up_to_the_cap(qc):
    make_records(qc, 6)
    records = AuditEntry.objects.filter(object_type="auditfixture.fixturerecord").order_by("-sequence")
    capped = CappedAt(records, 2)
    assert (capped.count, capped.capped, capped.num_pages) == (4, True, 2)
    assert [e.sequence for e in capped.page(2)] == list(records.values_list("sequence", flat=True)[2:4])
    exact = CappedAt(records.filter(object_id=records.first().object_id), 2)
    assert (exact.count, exact.capped) == (1, False)
    whole = AuditTrailPaginator(AuditEntry.objects.order_by("-sequence"), 100)
    assert whole.count == AuditEntry.objects.count() and not whole.capped


@pytest.mark.req("FEAT-PERF-AUDIT-LIST")
def test_a_list_past_the_cap_says_so_and_pages_the_first_entries(qc_client, qc):
    audited_bulk_create(FixtureRecord, [FixtureRecord(name=f"C{i}", quantity=i)
                                        for i in range(AuditTrailPaginator.count_cap + 1)], actor=qc)
    page = qc_client.get("/admin/cmlims/auditentry/?object_type=auditfixture.fixturerecord").content.decode()
    assert "10000+ audit entries" in page and "narrow the list" in page
    assert ">100</a>" in page and ">101</a>" not in page  # 100 entries a page: the first 10,000 are paged
    whole = qc_client.get("/admin/cmlims/auditentry/").content.decode()
    assert f"{AuditEntry.objects.count()} audit entries" in whole and "narrow the list" not in whole
