"""Top-level routes: the one place that composes every app's URLs."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from cmlims.views import healthz

api_v1 = [
    path("", include("cmlims.api.urls")),
    path("", include("cmlims.documents.api.urls")),
    path("", include("batches.api.documents")),
    path("", include("cmlims.investigations.urls")),
    path("", include("qc.api.urls")),
    path("", include("batches.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

handler404 = "cmlims.api.exceptions.api_not_found"
handler500 = "cmlims.api.exceptions.api_server_error"
