"""The admin as a workplace for lab staff: actions only for who may run them, errors named by their label."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.test import override_settings
from django.utils import timezone

from batches.models import Harvest, LotStatus
from tests.support.builders import lot_at

pytestmark = pytest.mark.django_db

LOTS = "/admin/batches/cmlot/"
LAB_ONLY = ("move_to_freeze_drying", "move_to_packaged", "verify_pooling", "verify_filtration")


def _actions(client, url) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["action_form"]  # None when no action at all is offered
    return {name for name, _ in form.fields["action"].choices} if form else set()


@pytest.mark.req("FEAT-ADM-ROLEACTIONS")
def test_lab_only_actions_are_offered_to_lab_staff_only(chain, client, make_user):
    lot_at(chain, LotStatus.POOLED)
    client.force_login(chain.lab1)
    lab = _actions(client, LOTS)
    assert set(LAB_ONLY) <= lab and "move_to_qc_complete" not in lab
    client.force_login(chain.qc)
    qc = _actions(client, LOTS)
    assert not set(LAB_ONLY) & qc and "move_to_qc_complete" in qc
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    root = _actions(client, LOTS)
    assert not set(LAB_ONLY) & root and "move_to_qc_complete" not in root
    assert "verify_selected" not in _actions(client, "/admin/batches/harvest/")


@pytest.mark.req("FEAT-ADM-ROLEACTIONS")
def test_a_refused_field_is_named_by_its_label(chain, client):
    client.force_login(chain.lab1)
    start = timezone.now() - dt.timedelta(hours=12)
    end = start + dt.timedelta(hours=10)  # the product needs 48-72 h of conditioning
    response = client.post("/admin/batches/harvest/add/", {
        "culture": chain.culture.pk, "conditioning_started_at_0": start.strftime("%Y-%m-%d"),
        "conditioning_started_at_1": start.strftime("%H:%M:%S"), "conditioning_ended_at_0": end.strftime("%Y-%m-%d"),
        "conditioning_ended_at_1": end.strftime("%H:%M:%S"), "volume_ml": "500", "viability_percent": "92",
        "hold_temperature_c": "4", "max_hold_hours": "24", "change_reason": "",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(m.startswith("Conditioning ended at: conditioning of 10.0 h") for m in shown), shown
    assert not any("conditioning_ended_at" in m for m in shown)
    assert not Harvest.objects.filter(culture=chain.culture, volume_ml=500, viability_percent=92,
                                      conditioning_started_at=start.replace(microsecond=0)).exists()


def _columns(html: str) -> list[str]:
    head = html.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return re.findall(r'<th scope="col" class="([^"]*)"', head)


@pytest.mark.req("FEAT-ADM-LISTS")
def test_lot_and_vial_lists_are_narrow_with_badges_and_values_as_entered(chain, client):
    client.force_login(chain.lab1)
    lot = lot_at(chain, LotStatus.PACKAGED)
    html = client.get(LOTS).content.decode()
    assert len(_columns(html)) <= 8  # the action checkbox and seven columns
    assert "cmlims/admin.css" in html
    assert '<span class="cm-badge cm-badge--wait">packaged (quarantine)</span>' in html
    assert f"{lot.volume_in_ml.normalize():f} → " in html and "E+" not in html and ".00 mL" not in html
    vials = client.get("/admin/batches/vial/").content.decode()
    assert len(_columns(vials)) <= 5
    assert '<span class="cm-badge cm-badge--good">available</span>' in vials
    assert f"{chain.location.code} — {chain.location.name}" in vials


@pytest.mark.req("FEAT-ADM-LISTS")
def test_times_are_shown_in_the_site_zone_with_its_name(chain, client):
    client.force_login(chain.lab1)
    lot = lot_at(chain, LotStatus.PACKAGED)
    with override_settings(TIME_ZONE="Europe/Berlin"):
        html = client.get(f"{LOTS}{lot.pk}/change/").content.decode()
    local = lot.status_changed_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert f"{local:%H:%M} {local.tzname()}" in html  # e.g. "14:05 CET" for 13:05 UTC
    with override_settings(TIME_ZONE="UTC"):
        html = client.get(f"{LOTS}{lot.pk}/change/").content.decode()
    assert f"{lot.status_changed_at:%H:%M} UTC" in html


def test_audit_history_shows_decimals_as_entered(chain, client):
    client.force_login(chain.lab1)
    lot = lot_at(chain, LotStatus.PACKAGED)
    html = client.get(f"{LOTS}{lot.pk}/history/").content.decode()
    assert not re.search(r"\d\.?\d*E\+\d", html)
