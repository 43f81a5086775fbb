from django.urls import path

from batches.models import LotStatus
from qc.api import views

urlpatterns = [
    path("qc/results/", views.ResultCreateView.as_view(), name="qc-result-create"),
    path("qc/results/import/", views.ResultImportView.as_view(), name="qc-result-import"),
    path("qc/results/<int:pk>/", views.ResultDetailView.as_view(), name="qc-result-detail"),
    path("qc/results/<int:pk>/approve/", views.ResultApproveView.as_view(), name="qc-result-approve"),
    path("qc/results/<int:pk>/invalidate/", views.ResultInvalidateView.as_view(), name="qc-result-invalidate"),
    path("qc/specifications/", views.SpecificationListView.as_view(), name="qc-specification-list"),
    path("qc/specifications/<int:pk>/approve/", views.SpecificationApproveView.as_view(),
         name="qc-specification-approve"),
    path("lots/<str:lot_number>/results/", views.LotResultsView.as_view(), name="lot-results"),
    path("lots/<str:lot_number>/hold/", views.LotHoldView.as_view(hold=True), name="lot-hold"),
    path("lots/<str:lot_number>/unhold/", views.LotHoldView.as_view(hold=False), name="lot-unhold"),
    path("lots/<str:lot_number>/signoff/", views.LotSignOffChecklistView.as_view(), name="lot-signoff"),
    path("lots/<str:lot_number>/audit-review/", views.LotAuditReviewView.as_view(), name="lot-audit-review"),
    path("lots/<str:lot_number>/release/", views.LotSignOffView.as_view(to=LotStatus.RELEASED), name="lot-release"),
    path("lots/<str:lot_number>/reject/", views.LotSignOffView.as_view(to=LotStatus.REJECTED), name="lot-reject"),
    # POST lots/<lot_number>/recall/ (the signed recall) shares its path with shipping: config/urls.py composes both.
]
