"""The list pages' rows by a plan made once per page (``cmlims.admin_rows``) are Django's rows, cell for cell:
every list of the registry, as each role and the administrator, plain, sorted and filtered (the row links carry
the preserved filters) and as a popup (the rows carry the opener's value)."""

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import results as django_results
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import resolve

from cmlims.admin_rows import changelist_results

pytestmark = pytest.mark.django_db

USERS = ("lab1", "qc1", "ship1", "admin")
QUERIES = ("", "?o=-1", "?o=2.1&q=a", "?_popup=1&_to_field=id")


def rows_of(rows) -> list[list[str]]:
    return [[str(cell) for cell in row] for row in rows]


@pytest.mark.req("FEAT-PERF-ROWS")
def test_every_list_page_rows_are_djangos_own():
    call_command("seed_demo", verbosity=0)
    users = get_user_model().objects.in_bulk(USERS, field_name="username")
    factory = RequestFactory()
    compared = cells = filtered = 0
    for model, model_admin in admin.site._registry.items():
        for username in USERS:
            for query in QUERIES:
                request = factory.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/{query}")
                request.user = users[username]
                request.resolver_match = resolve(request.path)  # the preserved filters are the list's own
                if not model_admin.has_view_or_change_permission(request):
                    continue
                try:
                    changelist = model_admin.get_changelist_instance(request)
                except Exception:  # noqa: BLE001 - a query this list refuses (no such field): Django's own answer
                    continue
                changelist.formset = None  # as changelist_view sets it for a list without list_editable
                expected = rows_of(django_results(changelist))
                assert rows_of(changelist_results(changelist)) == expected, (model.__name__, username, query)
                compared += 1
                filtered += bool(query and query != QUERIES[-1] and changelist.preserved_filters)
                cells += sum(len(row) for row in expected)
    assert compared > 200 and cells > 2_000 and filtered > 100  # the demo fills the lists: real rows
