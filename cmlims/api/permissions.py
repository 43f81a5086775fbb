"""Read gates shared by the apps' API views (DESIGN's role table: "read — everything" for the three working
roles; an integration account reads lots and results only; the superuser and a user with no role, nothing)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from cmlims import roles


class RoleReaders(BasePermission):
    """Reads need one of the four roles (lots and their QC results: the integration account included); writes are
    decided by the service. The superuser and a user with no role read nothing."""

    message = "Reading this needs one of the roles Lab staff, QC officer, Shipping coordinator or Integration."

    def has_permission(self, request, view) -> bool:
        return request.method not in SAFE_METHODS or roles.has_role(request.user, *roles.ROLES)


class WorkingRoleReaders(BasePermission):
    """Reads need the role Lab staff, QC officer or Shipping coordinator; writes are decided by the service."""

    message = "Reading this needs the role Lab staff, QC officer or Shipping coordinator."

    def has_permission(self, request, view) -> bool:
        if request.method not in SAFE_METHODS:
            return True
        return roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)


class RoleWriters(BasePermission):
    """Writes need one of the view's ``write_roles``, refused with 403 before the body is read or the record
    looked up (a caller who may not write learns neither what is valid nor what exists); the superuser is refused
    as ``require_role`` refuses it. The service checks again with the record (the admin calls it too) and may
    narrow the roles (quarantine labels lab staff, final ones the coordinator). Reads pass: their gate is another."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if not request.user.is_authenticated:
            return False  # 401, as IsAuthenticated answers
        roles.require_role(request.user, view.write_roles, f"{request.method} {request.path}")
        return True
