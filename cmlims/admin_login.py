"""The admin's login form: Django's, and an integration account is told it uses the API only."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from cmlims.admin_site import admin_refusal


class CmlimsAdminLoginForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if (why := admin_refusal(user)) is not None:
            raise ValidationError(why, code="api_only")
