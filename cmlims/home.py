"""The start page at /admin/: one list of sections, each for some roles, each row a count linking to the
filtered changelist.

Apps contribute sections from a ``home.py`` module (found like ``admin.py``: ``home_autodiscover()`` runs
when the admin is ready), with one ``home_section_add(...)`` call each: a new section (deviations, say) is one
entry. A section's ``rows(user)`` runs a fixed number of queries whatever the data volume (the page asserts
it): counts come from aggregates in the apps' selectors, never from a loop over records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode
from django.utils.module_loading import autodiscover_modules

from cmlims import roles


@dataclass(frozen=True)
class HomeRow:
    """One line of a section: ``count`` things, ``label``, linking to ``changelist`` ("app_label.model")
    filtered by ``query``; ``detail`` says what comes next or what blocks it."""

    label: str
    count: int
    changelist: str
    query: dict[str, object] = field(default_factory=dict)
    detail: str = ""

    @property
    def url(self) -> str:
        app_label, model_name = self.changelist.split(".")
        try:
            base = reverse(f"admin:{app_label}_{model_name}_changelist")
        except NoReverseMatch:
            return ""
        return f"{base}?{urlencode(self.query)}" if self.query else base


@dataclass(frozen=True)
class HomeSection:
    key: str
    title: str
    roles: frozenset[str]
    rows: Callable[[object], list[HomeRow]]
    order: int = 100
    empty: str = "Nothing waiting."


_SECTIONS: dict[str, HomeSection] = {}


def home_section_add(*, key: str, title: str, roles: Iterable[str], rows: Callable[[object], list[HomeRow]],
                     order: int = 100, empty: str = "Nothing waiting.") -> HomeSection:
    """Register (or replace, by ``key``) a start-page section shown to users holding one of ``roles``."""
    section = HomeSection(key=key, title=title, roles=frozenset(roles), rows=rows, order=order, empty=empty)
    _SECTIONS[key] = section
    return section


def home_sections() -> list[HomeSection]:
    return sorted(_SECTIONS.values(), key=lambda s: (s.order, s.key))


def home_sections_for(user) -> list[tuple[HomeSection, list[HomeRow]]]:
    """The sections ``user``'s roles see, with their rows. The superuser holds no GMP role: none."""
    held = roles.user_roles(user)
    return [(section, section.rows(user)) for section in home_sections() if section.roles & held]


def home_autodiscover() -> None:
    autodiscover_modules("home")


def home_section_remove(key: str) -> None:
    _SECTIONS.pop(key, None)
