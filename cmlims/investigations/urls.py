from django.urls import path

from cmlims.investigations import api

urlpatterns = [
    path("investigations/", api.InvestigationListView.as_view(), name="investigation-list"),
    path("investigations/<int:pk>/", api.InvestigationDetailView.as_view(), name="investigation-detail"),
    path("investigations/<int:pk>/close/", api.InvestigationCloseView.as_view(), name="investigation-close"),
    path("deviations/", api.DeviationListView.as_view(), name="deviation-list"),
    path("deviations/<int:pk>/close/", api.DeviationCloseView.as_view(), name="deviation-close"),
]
