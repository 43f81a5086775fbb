"""The admin for lab staff: saves go through the services, refusals are messages, lists have no per-row queries."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.forms import SplitDateTimeWidget
from django.test.utils import CaptureQueriesContext

from batches.models import CMLot, LotStatus
from cmlims.models import AuditEntry
from tests.support.builders import LATE, lot_at, make_harvest, pool, t

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/batches/cmlot/"


def _count(client, url, *, counting: bool = True) -> int:
    """Queries of one GET of ``url``; ``counting=False`` leaves out the list's ``COUNT(*)``, which a list runs only
    once its rows outgrow the first page (``cmlims.admin.CountLastChangeList``)."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len([q for q in ctx.captured_queries if counting or not q["sql"].startswith("SELECT COUNT(*)")])


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_lot_changelist_has_no_per_row_queries(chain, client, django_assert_num_queries):
    client.force_login(chain.lab1)
    lot_at(chain, LotStatus.PACKAGED)
    _count(client, CHANGELIST)  # warms the process-wide ContentType cache (one query, once per process)
    one = _count(client, CHANGELIST)
    for _ in range(5):
        pool(chain, [(make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("30")), Decimal("30"))])
    with django_assert_num_queries(one):
        response = client.get(CHANGELIST)
    assert response.content.count(b"genealogy</a>") == 6
    assert _count(client, CHANGELIST + "?status__exact=pooled") == one


@pytest.mark.parametrize("url", ["/admin/batches/harvest/", "/admin/batches/vial/", "/admin/batches/culture/",
                                 "/admin/batches/lyophilisationrun/", "/admin/batches/packagingrun/",
                                 "/admin/batches/cellbank/"])
def test_other_changelists_are_constant(chain, client, url):
    client.force_login(chain.lab1)
    lot_at(chain, LotStatus.PACKAGED)
    one = _count(client, url, counting=False)
    lot_at(chain, LotStatus.PACKAGED)  # the vial list now outgrows its first page: its COUNT(*) is added
    assert _count(client, url, counting=False) == one


@pytest.mark.req("FEAT-LOT-RECORD")
def test_pooling_in_the_admin_goes_through_the_service(chain, client):
    client.force_login(chain.lab1)
    first = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("100"))
    second = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("100"), days_ago=2)
    form = {
        "product": chain.product.pk, "pooled_at_0": t(0, -1).strftime("%Y-%m-%d"),
        "pooled_at_1": t(0, -1).strftime("%H:%M:%S"), "change_reason": "",
        "contributions-TOTAL_FORMS": "3", "contributions-INITIAL_FORMS": "0",
        "contributions-MIN_NUM_FORMS": "0", "contributions-MAX_NUM_FORMS": "1000",
        "contributions-0-harvest": first.pk, "contributions-0-volume_ml": "60",
        "contributions-1-harvest": second.pk, "contributions-1-volume_ml": "100",
    }
    response = client.post("/admin/batches/cmlot/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    lot = CMLot.objects.get()
    assert lot.volume_in_ml == Decimal("160") and lot.pooled_by == chain.lab1
    assert AuditEntry.objects.filter(object_type="batches.cmlot", object_id=str(lot.pk), action="created").exists()
    # Over-pooling the first harvest (40 mL left) is refused with a message naming the field; nothing is written.
    form["contributions-0-volume_ml"] = "41"
    form["contributions-1-harvest"] = ""
    form["contributions-1-volume_ml"] = ""
    response = client.post("/admin/batches/cmlot/add/", form, follow=True)
    assert any("contributions[0].volume_ml" in m and "40.00 mL left" in m for m in _messages(response))
    assert CMLot.objects.count() == 1


@pytest.mark.req("P11-11.10f")
def test_transition_action_reports_refusals(chain, client):
    client.force_login(chain.lab1)
    lot = lot_at(chain, LotStatus.POOLED)
    response = client.post(CHANGELIST, {"action": "move_to_freeze_drying", "_selected_action": [lot.pk]},
                           follow=True)
    assert any("cannot move to freeze_drying" in m for m in _messages(response))
    lot.refresh_from_db()
    assert lot.status == LotStatus.POOLED


@pytest.mark.req("1271-290", "RULE-9")
def test_genealogy_page_and_search(chain, client):
    client.force_login(chain.qc)
    lot = lot_at(chain, LotStatus.PACKAGED)
    response = client.get(f"/admin/batches/cmlot/{lot.pk}/genealogy/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in (chain.source.code, chain.bank.code, chain.culture.code, lot.lot_number, "97.50", "38 packaged"):
        assert text in body
    serial = lot.vials.first().serial
    for term in (serial, chain.source.code, lot.lot_number):
        assert lot.lot_number.encode() in client.get(CHANGELIST, {"q": term}).content
    assert b"No CM lot" in client.get(CHANGELIST, {"q": "NOTHING-LIKE-THIS"}).content or \
        lot.lot_number.encode() not in client.get(CHANGELIST, {"q": "NOTHING-LIKE-THIS"}).content


@pytest.mark.req("P11-11.10g")
def test_qc_officer_cannot_record_manufacturing(chain, client):
    client.force_login(chain.qc)
    assert client.get("/admin/batches/cmlot/add/").status_code == 403


def test_lot_timeline_covers_everything_under_the_lot(chain, client):
    from cmlims.admin import timeline_url
    from cmlims.timeline import timeline_for

    lot = lot_at(chain, LotStatus.PACKAGED)
    other = lot_at(chain, LotStatus.POOLED)  # another lot's records stay out
    timeline = timeline_for(lot)
    assert {"batches.cmlot", "batches.harvestcontribution", "batches.harvest", "batches.lyophilisationrun",
            "batches.lyophilisationphase", "batches.packagingrun", "batches.vial"} <= set(timeline.objects)
    assert str(other.pk) not in timeline.objects["batches.cmlot"]
    types = set(timeline.entries.values_list("object_type", flat=True))
    assert {"batches.cmlot", "batches.lyophilisationphase", "batches.vial"} <= types
    client.force_login(chain.lab1)
    page = client.get(timeline_url(lot))
    assert page.status_code == 200
    body = page.content.decode()
    assert lot.lot_number in body and lot.vials.first().serial in body and other.lot_number not in body
    assert timeline_url(lot) in client.get(f"/admin/batches/cmlot/{lot.pk}/genealogy/").content.decode()


@pytest.mark.parametrize(("model_name", "field_name", "expect"), [
    ("cmlot", "product", "product"),  # harvests: test_choice_lists_offer_no_spent_harvest_...
    ("culture", "bank", "bank"), ("packagingrun", "lot", "lot"),
])
def test_autocomplete_serves_lab_staff(chain, client, model_name, field_name, expect):
    lot = lot_at(chain, LotStatus.FREEZE_DRYING)
    client.force_login(chain.lab1)
    response = client.get("/admin/autocomplete/", {"app_label": "batches", "model_name": model_name,
                                                   "field_name": field_name, "term": ""})
    assert response.status_code == 200, response.content
    texts = [r["text"] for r in response.json()["results"]]
    assert texts, response.json()
    wanted = {"product": chain.product.name, "culture": chain.culture.code, "bank": chain.bank.code,
              "lot": lot.lot_number}[expect]
    assert any(wanted in text for text in texts), texts


def _autocomplete_texts(client, model_name, field_name) -> list[str]:
    response = client.get("/admin/autocomplete/", {"app_label": "batches", "model_name": model_name,
                                                   "field_name": field_name, "term": ""})
    assert response.status_code == 200, response.content
    return [r["text"] for r in response.json()["results"]]


@pytest.mark.req("RULE-1")
def test_choice_lists_offer_no_spent_harvest_and_no_finished_lot_for_a_dryer(chain, client):
    spent = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("100"), verifier=chain.lab2)
    partly = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("100"), verifier=chain.lab2)
    pooled = pool(chain, [(spent, Decimal("100")), (partly, Decimal("40"))])
    packaged = lot_at(chain, LotStatus.PACKAGED)
    client.force_login(chain.lab1)
    harvests = _autocomplete_texts(client, "harvestcontribution", "harvest")
    assert str(partly) in harvests and str(spent) not in harvests  # 60 mL left vs none
    lots = _autocomplete_texts(client, "lyophilisationrun", "lot")
    assert any(pooled.lot_number in text for text in lots)
    assert not any(packaged.lot_number in text for text in lots)  # dried and packaged already


def _change_form_data(response) -> dict:
    """The POST body the admin change page would send unchanged (main form and every inline formset)."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        forms += list(formset.forms)
        data.update({f"{formset.management_form.prefix}-{k}": v
                     for k, v in formset.management_form.initial.items()})
    for form in forms:
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            if value is None:
                continue
            key = form.add_prefix(name)
            if hasattr(value, "pk"):
                value = value.pk
            if isinstance(field.widget, SplitDateTimeWidget):
                data[f"{key}_0"], data[f"{key}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
            else:
                data[key] = value
    return data


def test_passages_are_recorded_in_the_culture_inline_through_the_service(chain, client):
    from batches.models import Passage
    from batches.services import cultures

    culture = cultures.culture_create(actor=chain.lab1, product=chain.product, bank=chain.bank, code="CU-0009",
                                      started_at=t(10), vessel="T-175", medium_lot="MED-2", reason=LATE)
    client.force_login(chain.lab1)
    url = f"/admin/batches/culture/{culture.pk}/change/"
    data = _change_form_data(client.get(url))
    row = {"passage_number": "4", "seeded_at_0": t(9).strftime("%Y-%m-%d"), "seeded_at_1": "08:00:00",
           "harvested_at_0": t(5).strftime("%Y-%m-%d"), "harvested_at_1": "08:00:00", "cells_seeded": "5000000",
           "cells_harvested": "40000000", "viability_percent": "101", "confluence_percent": "80"}
    data.update({f"passages-0-{k}": v for k, v in row.items()}, change_reason=LATE)
    response = client.post(url, data, follow=True)
    assert not Passage.objects.filter(culture=culture).exists()
    assert not response.context["adminform"].form.errors
    passage_errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "viability_percent" in passage_errors[0], passage_errors
    data["passages-0-viability_percent"] = "93.5"
    response = client.post(url, data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [i.formset.errors for i in response.context["inline_admin_formsets"]], _messages(response))
    passage = Passage.objects.get(culture=culture)
    assert passage.performed_by == chain.lab1 and passage.population_doublings == Decimal("3.00")
    assert AuditEntry.objects.filter(object_type="batches.passage", object_id=str(passage.pk),
                                     action="created", username="lab1").exists()


def test_run_admin_refuses_editing_a_recorded_phase_and_completes_the_run(chain, client):
    from datetime import timedelta

    from batches.models import LyophilisationPhase, LyophilisationRun
    from batches.services import drying
    from tests.support.builders import process

    lot = process(chain, lot_at(chain, LotStatus.POOLED))
    start = t(1, 5)
    run = drying.lyophilisation_run_start(lot=lot, actor=chain.lab1, run_number="LYO-ADM", dryer="LYO-A",
                                          recipe="CM-1ML", recipe_version="3", vials_loaded=40,
                                          fill_volume_ml=Decimal("0.9"), performed_at=start, started_at=start)
    for i, phase in enumerate(drying.PHASE_ORDER):
        drying.lyophilisation_phase_record(
            run=run, phase=phase, actor=chain.lab1, shelf_temperature_setpoint_c=Decimal("-45"),
            shelf_temperature_actual_c=Decimal("-44.6"), chamber_pressure_setpoint_mbar=Decimal("0.1"),
            chamber_pressure_actual_mbar=Decimal("0.1"), started_at=start + timedelta(hours=4 * i),
            ended_at=start + timedelta(hours=4 * i + 4), reason="entered from the dryer's paper record")
    client.force_login(chain.lab1)
    url = f"/admin/batches/lyophilisationrun/{run.pk}/change/"
    data = _change_form_data(client.get(url))
    edited = {**data, "phases-0-shelf_temperature_actual_c": "-30.0"}
    response = client.post(url, edited, follow=True)
    assert any("a recorded phase is not edited" in m for m in _messages(response)), _messages(response)
    freezing = LyophilisationPhase.objects.get(run=run, phase="freezing")
    assert freezing.shelf_temperature_actual_c == Decimal("-44.6")
    end = start + timedelta(hours=12)
    # Primary drying ends with its phase (4 h to 8 h after the start): inside the run at any time of day.
    primary_end = start + timedelta(hours=8)
    data.update({
        "ended_at_0": end.strftime("%Y-%m-%d"), "ended_at_1": end.strftime("%H:%M:%S"),
        "end_of_primary_drying_method": "pressure_rise",
        "end_of_primary_drying_at_0": primary_end.strftime("%Y-%m-%d"),
        "end_of_primary_drying_at_1": primary_end.strftime("%H:%M:%S"),
        "end_of_primary_drying_evidence": "PRT < 0.01 mbar/min", "stoppering_method": "nitrogen",
        "stoppered_at_0": end.strftime("%Y-%m-%d"), "stoppered_at_1": end.strftime("%H:%M:%S"),
        "alarm_count": "0",
    })
    response = client.post(url, data, follow=True)
    assert LyophilisationRun.objects.get(pk=run.pk).completed_by == chain.lab1, _messages(response)


def test_pooled_rows_are_read_only_and_a_harvest_can_still_be_added(chain, client):
    from batches.models import HarvestContribution

    first = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("100"))
    lot = pool(chain, [(first, Decimal("60"))])
    client.force_login(chain.lab1)
    url = f"/admin/batches/cmlot/{lot.pk}/change/"
    page = client.get(url)
    html = page.content.decode()
    assert 'name="contributions-0-volume_ml"' not in html and "60.00" in html  # shown, not editable
    data = _change_form_data(page)
    data["contributions-0-volume_ml"] = "99"  # a forged edit of the pooled row is ignored
    second = make_harvest(chain.lab1, chain.culture, volume_ml=Decimal("50"), days_ago=2)
    data.update({"contributions-1-harvest": second.pk, "contributions-1-volume_ml": "50"})
    response = client.post(url, data)
    assert response.status_code == 302, _messages(response)
    assert HarvestContribution.objects.get(lot=lot, harvest=first).volume_ml == Decimal("60")
    assert HarvestContribution.objects.get(lot=lot, harvest=second).volume_ml == Decimal("50")
    lot.refresh_from_db()
    assert lot.volume_in_ml == Decimal("110")


@pytest.mark.req("FEAT-ADM-LISTS")
def test_a_harvest_is_found_by_its_printed_name(make_user, chain):
    from django.test import Client

    from batches.models import Harvest, LotStatus
    from cmlims import roles
    from tests.support.builders import lot_at

    lot_at(chain, LotStatus.POOLED)  # its harvests
    harvest = Harvest.objects.filter(voided_at__isnull=True).select_related("culture").order_by("pk").first()
    lab = make_user("lab9", roles.LAB_STAFF, is_staff=True)
    client = Client()
    client.force_login(lab)
    listing = client.get("/admin/batches/harvest/", {"q": str(harvest)})
    assert listing.status_code == 200 and list(listing.context["cl"].result_list) == [harvest]
