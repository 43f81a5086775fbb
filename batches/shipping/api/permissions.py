from rest_framework.permissions import BasePermission

from cmlims import roles


class ShippingReaders(BasePermission):
    """Shipments and consignees are read by lab staff, QC officers and shipping coordinators; an
    integration account reads lots and results only (DESIGN roles). Writes are checked by the services."""

    message = "Reading shipments needs the role Lab staff, QC officer or Shipping coordinator."

    def has_permission(self, request, view) -> bool:
        return roles.has_role(request.user, roles.LAB_STAFF, roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)
