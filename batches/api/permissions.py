"""Who may read the manufacturing record over the API (DESIGN roles: everyone with a role reads lots; the
integration account reads lots and results only). Writes are checked by the services."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from cmlims import roles


class LotReaders(BasePermission):
    message = "Reading lots needs one of the roles Lab staff, QC officer, Shipping coordinator or Integration."

    def has_permission(self, request, view) -> bool:
        return request.method not in SAFE_METHODS or roles.has_role(request.user, *roles.ROLES)


class TraceReaders(BasePermission):
    message = "Tracing vials and donors needs the role Lab staff, QC officer or Shipping coordinator."

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)
