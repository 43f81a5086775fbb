"""Read gates shared by the apps' API views (DESIGN's role table: "read — everything" for the three working
roles; an integration account reads lots and results only; the superuser and a user with no role, nothing)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from cmlims import roles


class WorkingRoleReaders(BasePermission):
    """Reads need the role Lab staff, QC officer or Shipping coordinator; writes are decided by the service."""

    message = "Reading this needs the role Lab staff, QC officer or Shipping coordinator."

    def has_permission(self, request, view) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        return roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)
