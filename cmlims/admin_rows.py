"""A changelist's rows by a plan made once per page: the same cells as Django's ``items_for_result``, cheaper.

Django works out every cell from scratch: which kind of column it is (model field, admin method, attribute),
its CSS classes, whether it links, then for the linking cell ``reverse()`` and ``add_preserved_filters``,
which runs the URL resolver over the change URL of every row. On the lot list that was a third of the page
(B2). Here the column's kind, classes and link are decided once per page, the change URLs come from one
``reverse`` (``url_for_each``) and the preserved filters from one call to Django's own function, whose
suffix every row's URL then takes. The cells' values and formatting are Django's (``lookup_field``'s
branches, ``display_for_field``/``display_for_value``), and the HTML is equal to Django's row for row
(tested on every list page of the registry). A list with ``list_editable`` (a formset) is left to Django.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib.admin.templatetags.admin_list import ResultList, result_headers, result_hidden_fields
from django.contrib.admin.templatetags.admin_list import results as django_results
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.contrib.admin.utils import (
    FieldIsAForeignKeyColumnName,
    display_for_field,
    display_for_value,
    lookup_field,
    quote,
)
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.urls import NoReverseMatch
from django.utils.html import format_html
from django.utils.safestring import SafeString

from cmlims.admin import url_for_each


@dataclass(frozen=True)
class _Column:
    name: object  # a field name, an admin or model attribute name, or a callable
    css: str  # the cell's class before the value adds "nowrap"
    css_unread: str  # its class when the value's related record is missing (ObjectDoesNotExist)
    links: bool
    field: models.Field | None  # a concrete model field: the value is its attribute
    call: Callable | None  # an admin method or a callable: the value is call(row)


def _cell_field(opts, name) -> models.Field:
    """The concrete field a column shows, as the admin finds it (``django.contrib.admin.utils``'s private
    ``_get_non_gfk_field``): a generic or reverse relation, or a ``<fk>_id`` name, is not one."""
    field = opts.get_field(name)
    if field.is_relation and ((field.many_to_one and not field.related_model) or field.one_to_many):
        raise FieldDoesNotExist
    if field.is_relation and not field.many_to_many and getattr(field, "attname", None) == name:
        raise FieldIsAForeignKeyColumnName
    return field


def _escaped(value) -> str:
    """``conditional_escape(value)`` as text, without its lazy-string wrapper (a third of a page's cells'
    cost): safe HTML as it is, anything else escaped as Django's ``escape`` does (``html.escape``)."""
    if hasattr(value, "__html__"):
        return value.__html__()
    return html.escape(str(value))


def _css_name(name, index: int) -> str:
    # As the stock list names a column's cells: a callable by its __name__ (a lambda by its position).
    if callable(name):
        return f"lambda{index}" if name.__name__ == "<lambda>" else name.__name__
    return name


def _column(cl, index: int, name, *, links: bool) -> _Column:
    field = call = None
    try:
        field = _cell_field(cl.lookup_opts, name)
    except (FieldDoesNotExist, FieldIsAForeignKeyColumnName):
        if callable(name):
            call = name
        elif hasattr(cl.model_admin, name) and name != "__str__":
            call = getattr(cl.model_admin, name)
    unread = f"field-{_css_name(name, index)}"
    css = "action-checkbox" if name == "action_checkbox" and field is None else unread
    return _Column(name=name, css=css, css_unread=unread, links=links, field=field, call=call)


class RowPlan:
    """What every row of ``cl``'s page shares: its columns, the empty value, the change URL's form."""

    def __init__(self, cl) -> None:
        self.cl = cl
        self.empty = cl.model_admin.get_empty_value_display()
        first, columns = True, []
        for index, name in enumerate(cl.list_display):
            if cl.list_display_links is None:
                links = False
            else:
                links = (first and not cl.list_display_links) or name in cl.list_display_links
            if links:
                first = False
            columns.append(_column(cl, index, name, links=links))
        self.columns = columns
        self.first_link = next((column for column in columns if column.links), None)
        self.link_attr = str(cl.to_field) if cl.to_field else cl.lookup_opts.pk.attname
        self._url_of: Callable[[object], str] | None = None
        self._suffix: str | None = None

    def change_url(self, row) -> str:
        """``cl.url_for_result(row)`` with the page's preserved filters, as Django's cell writes it."""
        if self._url_of is None:
            opts = self.cl.opts
            self._url_of = url_for_each(f"{self.cl.model_admin.admin_site.name}:{opts.app_label}_"
                                        f"{opts.model_name}_change")
        url = self._url_of(quote(getattr(row, self.cl.pk_attname)))
        if self._suffix is None:
            # Django's function on this row's URL; the suffix it adds depends on the page, not on the row (a
            # change URL is never the changelist's, the only case in which it merges differently).
            full = add_preserved_filters({"preserved_filters": self.cl.preserved_filters, "opts": self.cl.opts}, url)
            if not full.startswith(url) or "?" in url:
                raise ValueError(f"unexpected change URL {url!r} for preserved filters")
            self._suffix = full[len(url):]
        return url + self._suffix

    def cells(self, row) -> Iterator[SafeString]:
        cl, empty = self.cl, self.empty
        for column in self.columns:
            cell_empty = empty
            classes = [column.css]
            try:
                if column.field is not None:
                    f, attr, value = column.field, None, getattr(row, column.field.name)
                elif column.call is not None:
                    f, attr, value = None, column.call, column.call(row)
                else:
                    f, attr, value = lookup_field(column.name, row, cl.model_admin)
            except ObjectDoesNotExist:
                shown, classes = cell_empty, [column.css_unread]
            else:
                cell_empty = getattr(attr, "empty_value_display", cell_empty)
                if isinstance(value, str) and value.strip() == "":
                    value = ""
                if f is None or f.auto_created:
                    boolean = getattr(attr, "boolean", False)
                    if isinstance(attr, property) and hasattr(attr, "fget"):
                        boolean = getattr(attr.fget, "boolean", False)
                    shown = display_for_value(value, cell_empty, boolean)
                    if isinstance(value, (datetime.date, datetime.time)):
                        classes.append("nowrap")
                else:
                    if isinstance(f.remote_field, models.ManyToOneRel):
                        related = getattr(row, f.name)
                        shown = cell_empty if related is None else related
                    else:
                        shown = display_for_field(value, f, cell_empty, avoid_link=column.links)
                    if isinstance(f, (models.DateField, models.TimeField, models.ForeignKey)):
                        classes.append("nowrap")
            css = html.escape(" ".join(classes))
            if column.links:
                tag = "th" if column is self.first_link else "td"
                try:
                    url = self.change_url(row)
                except NoReverseMatch:
                    inner = _escaped(shown)
                else:
                    opener = format_html(' data-popup-opener="{}"', row.serializable_value(self.link_attr)) \
                        if cl.is_popup else ""
                    inner = f'<a href="{html.escape(url)}"{opener}>{_escaped(shown)}</a>'
                yield SafeString(f'<{tag} class="{css}">{inner}</{tag}>')  # every part escaped above
            else:
                yield SafeString(f'<td class="{css}">{_escaped(shown)}</td>')  # the value escaped


def changelist_results(cl) -> list[ResultList]:
    """The page's rows as Django's ``results(cl)`` gives them."""
    if cl.formset:
        return list(django_results(cl))
    plan = RowPlan(cl)
    return [ResultList(None, list(plan.cells(row))) for row in cl.result_list]


def result_list(cl) -> dict:
    """Django's ``result_list`` context with the rows above."""
    headers = list(result_headers(cl))
    return {
        "cl": cl,
        "result_hidden_fields": list(result_hidden_fields(cl)),
        "result_headers": headers,
        "num_sorted_fields": sum(1 for h in headers if h["sortable"] and h["sorted"]),
        "results": changelist_results(cl),
    }
