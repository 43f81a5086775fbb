from django.urls import path

from cmlims.api.views import (
    AuditVerificationView,
    LoginLockClearView,
    MeView,
    TokenListView,
    TokenObtainView,
    TokenRevokeView,
)

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("auth/tokens/", TokenListView.as_view(), name="api-token-list"),
    path("auth/tokens/<int:pk>/revoke/", TokenRevokeView.as_view(), name="api-token-revoke"),
    path("auth/locks/clear/", LoginLockClearView.as_view(), name="api-login-lock-clear"),
    path("me/", MeView.as_view(), name="api-me"),
    path("audit/verification/", AuditVerificationView.as_view(), name="api-audit-verification"),
]
