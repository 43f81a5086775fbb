"""POST /api/v1/lots/{lot_number}/coa/ -> 202 {"job", "url"}."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from batches.selectors import lot_get
from cmlims import roles
from cmlims.api.permissions import RoleWriters
from cmlims.documents.api.views import JobAcceptedSerializer, job_accepted
from qc.documents import lot_coa_request


class LotCoaView(APIView):
    """Generate the certificate of analysis of a released lot (QC officer or shipping coordinator)."""

    permission_classes = [IsAuthenticated, RoleWriters]
    write_roles = (roles.QC_OFFICER, roles.SHIPPING_COORDINATOR)

    @extend_schema(request=None, responses={202: JobAcceptedSerializer})
    def post(self, request, lot_number: str):
        return job_accepted(lot_coa_request(lot=lot_get(lot_number), actor=request.user))


urlpatterns = [path("lots/<str:lot_number>/coa/", LotCoaView.as_view(), name="lot-coa")]
