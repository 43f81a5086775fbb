"""Read-only foreign keys on change pages (issue 17 left-over): people by printed name, records by their names,
and no link a reader cannot follow; Django's own read-only field links every user to the user admin (a 403
for all but the administrator)."""

import re

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from batches.models import Harvest

pytestmark = pytest.mark.django_db

USER_ADMIN = "/admin/auth/user/"
PER_MODEL = 20  # rows of one kind render through the same code: the first 20 of each stand for the rest
ROLES = ("lab1", "qc1", "ship1")


@pytest.fixture
def demo():
    call_command("seed_demo", verbosity=0)


def _change_urls():
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_change"
        for pk in model._default_manager.order_by("pk").values_list("pk", flat=True)[:PER_MODEL]:
            try:
                yield model, reverse(name, args=[pk])
            except NoReverseMatch:
                break


@pytest.mark.req("FEAT-ADM-READONLYNAMES")
def test_no_change_page_of_the_demo_links_a_user_for_anyone_but_the_administrator(demo, client):
    users = get_user_model().objects
    urls = list(_change_urls())
    assert len({model for model, _ in urls}) >= 15  # the walk reaches the demo's records, not an empty site
    opened = 0
    for username in ROLES:
        client.force_login(users.get(username=username))
        for model, url in urls:
            response = client.get(url)
            if response.status_code != 200:
                continue  # a page this role may not open: nothing on it is shown to them
            opened += 1
            links = re.findall(rf'href="({USER_ADMIN}[^"]*)"', response.content.decode())
            assert not links, f"{username} on {url} ({model.__name__}) sees links to the user admin: {links}"
    assert opened > 100


@pytest.mark.req("FEAT-ADM-READONLYNAMES")
def test_a_read_only_person_shows_by_printed_name_and_the_administrator_keeps_the_link(demo, client):
    harvest = Harvest.objects.select_related("performed_by", "culture").order_by("pk").first()
    url = reverse("admin:batches_harvest_change", args=[harvest.pk])
    client.force_login(get_user_model().objects.get(username="lab1"))
    page = client.get(url).content.decode()
    printed = harvest.performed_by.get_full_name()
    assert printed and re.search(rf'<div class="readonly">\s*{re.escape(printed)}\s*</div>', page), printed
    # A record the reader may open stays a link, by its name.
    culture_url = reverse("admin:batches_culture_change", args=[harvest.culture_id])
    assert f'<a href="{culture_url}">{harvest.culture}</a>' in page
    client.force_login(get_user_model().objects.get(username="admin"))
    page = client.get(url).content.decode()
    user_url = reverse("admin:auth_user_change", args=[harvest.performed_by_id])
    assert f'<a href="{user_url}">{printed}</a>' in page
