"""The admin site: header "cmlims · <site name>", and /admin/ as the start page of the user's roles
(``cmlims.home``) above the stock list of apps. Installed by ``CmlimsAdminConfig`` in place of
``django.contrib.admin`` (INSTALLED_APPS), so every ``admin.register`` lands here."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.functional import SimpleLazyObject

# This module is imported while the app registry loads (CmlimsAdminConfig): auth forms and roles are imported
# where they are used.
API_ONLY = "Integration accounts use the REST API only: they do not sign in to the admin."


def admin_refusal(user) -> str | None:
    """Why this signed-in staff user may not use the admin (None when they may)."""
    from cmlims import roles

    return API_ONLY if roles.has_role(user, roles.INTEGRATION) else None


class CmlimsAdminSite(admin.AdminSite):
    index_template = "admin/cmlims_index.html"

    @property
    def site_header(self) -> str:  # type: ignore[override]
        return f"cmlims · {settings.CMLIMS_SITE_NAME}"

    @property
    def site_title(self) -> str:  # type: ignore[override]
        return f"cmlims · {settings.CMLIMS_SITE_NAME}"

    index_title = "Start page"
    # At 1280 px the stock side menu takes 300 px from every list and form (the lot list then scrolls sideways
    # inside its box); the start page's "All lists" and the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False

    @property
    def login_form(self):  # type: ignore[override]
        from cmlims.admin_login import CmlimsAdminLoginForm

        return CmlimsAdminLoginForm

    def has_permission(self, request) -> bool:
        # The role table gives integration accounts the API only; a staff flag set by mistake opens nothing.
        return super().has_permission(request) and admin_refusal(request.user) is None

    def get_app_list(self, request, app_label=None):
        # Every admin page's context carries the whole app list (``available_apps``, for the side menu, which is
        # off here): built only when a template reads it (the start page's "All lists"), once per request.
        if app_label is not None:
            return super().get_app_list(request, app_label)
        if not hasattr(request, "_cmlims_app_list"):
            build = super().get_app_list
            request._cmlims_app_list = SimpleLazyObject(lambda: build(request))
        return request._cmlims_app_list

    def index(self, request, extra_context=None):
        from cmlims.home import home_sections_for

        sections = home_sections_for(request.user)
        return super().index(request, {"home_sections": sections, **(extra_context or {})})


class CmlimsAdminConfig(AdminConfig):
    default_site = "cmlims.admin_site.CmlimsAdminSite"

    def ready(self) -> None:
        super().ready()
        from django.contrib.admin import helpers

        from cmlims.admin import NamedReadonlyField
        from cmlims.home import home_autodiscover

        # Read-only foreign keys show names and link only where the reader may go (Fieldline reads this name).
        helpers.AdminReadonlyField = NamedReadonlyField

        home_autodiscover()
