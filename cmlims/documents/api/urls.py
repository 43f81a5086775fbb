from django.urls import path

from cmlims.documents.api.views import DocumentJobDownloadView, DocumentJobView

urlpatterns = [
    path("jobs/<int:pk>/", DocumentJobView.as_view(), name="api-document-job"),
    path("jobs/<int:pk>/download/", DocumentJobDownloadView.as_view(), name="api-document-job-download"),
]
