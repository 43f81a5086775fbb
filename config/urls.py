"""Top-level routes: the one place that composes every app's URLs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from batches.models import LotStatus
from batches.shipping.api.views import LotRecallView
from cmlims import roles
from cmlims.views import favicon, healthz
from qc.api.views import LotSignOffView


class LotRecallEndpoint(LotRecallView, LotSignOffView):
    """One path, two apps: GET is shipping's recall answer (every vial, shipment and consignee of the lot,
    rule 9); POST is QC's signed recall of the lot. Django routes by path only, so they meet here."""

    to = LotStatus.RECALLED
    write_roles = (roles.QC_OFFICER,)  # GET: the shipping readers; POST: the officer's signed recall

api_v1 = [
    path("lots/<str:lot_number>/recall/", LotRecallEndpoint.as_view(), name="lot-recall"),
    path("", include("batches.shipping.api.urls")),
    path("", include("cmlims.api.urls")),
    path("", include("cmlims.documents.api.urls")),
    path("", include("cmlims.printing.api")),
    path("", include("batches.api.documents")),
    path("", include("qc.api.documents")),
    path("", include("cmlims.investigations.urls")),
    path("", include("qc.api.urls")),
    path("", include("batches.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="cmlims/redoc.html"),
         name="redoc"),
]

handler404 = "cmlims.api.exceptions.api_not_found"
handler500 = "cmlims.api.exceptions.api_server_error"
