"""Who may read the manufacturing record over the API (DESIGN roles: everyone with a role reads lots; the
integration account reads lots and results only). Writes are checked by the services."""

from rest_framework.permissions import BasePermission

from cmlims import roles
from cmlims.api.permissions import RoleReaders


class LotReaders(RoleReaders):
    message = "Reading lots needs one of the roles Lab staff, QC officer, Shipping coordinator or Integration."


class TraceReaders(BasePermission):
    message = "Tracing vials and donors needs the role Lab staff, QC officer or Shipping coordinator."

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)
