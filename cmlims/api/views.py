"""Core API: tokens (issue, list, revoke), "who am I" and the audit-chain verification."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cmlims import logins, roles
from cmlims.api.parsing import request_parse
from cmlims.api.schema import alternative, request_alternatives
from cmlims.api.throttling import LoginThrottle
from cmlims.logins import login_lock_clear
from cmlims.models import ApiToken
from cmlims.selectors import api_token_get, api_token_list, user_profile
from cmlims.services import api_token_issue, api_token_revoke
from cmlims.verification import audit_chain_verify


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenObtainView(APIView):
    """Exchange a user name and password for an expiring API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]  # per client address; lockout per user name and address: django-axes

    @extend_schema(
        request=TokenRequestSerializer,
        responses={200: inline_serializer("TokenResponse", {"token": serializers.CharField(),
                                                            "expires": serializers.DateTimeField()})},
    )
    def post(self, request):
        key, expires = api_token_issue(**request_parse(TokenRequestSerializer, request), request=request)
        return Response({"token": key, "expires": expires})


class TokenSerializer(serializers.ModelSerializer):
    live = serializers.BooleanField(source="is_live", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "prefix", "created_at", "expires_at", "revoked_at", "live"]
        read_only_fields = fields


class TokenListView(generics.ListAPIView):
    """The caller's own tokens (the key itself is never shown again). ``?all=1`` adds expired and revoked ones."""

    serializer_class = TokenSerializer

    @extend_schema(parameters=[OpenApiParameter("all", bool, description="include expired and revoked tokens")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user, only the model
            return api_token_list(user=None)
        include_inactive = self.request.query_params.get("all") in {"1", "true", "yes"}
        return api_token_list(user=self.request.user, include_inactive=include_inactive)


class TokenRevokeRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class TokenRevokeView(APIView):
    """Revoke a token now (log an integration out). The owner or the administrator may."""

    @extend_schema(request=TokenRevokeRequestSerializer, responses={200: TokenSerializer})
    def post(self, request, pk: int):
        reason = request_parse(TokenRevokeRequestSerializer, request)["reason"]
        token = api_token_revoke(token=api_token_get(pk), actor=request.user, reason=reason)
        return Response(TokenSerializer(token).data)


class LoginLockClearSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, allow_blank=True, default="", max_length=150)
    ip_address = serializers.IPAddressField(required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=500)


@extend_schema_field({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]})
class _IPAddress(serializers.IPAddressField):
    """An IPv4 or IPv6 address, as the schema says it (``IPAddressField`` says only ``ip``)."""


# One of the two, or both: the service needs a user name or a client address to clear.
LOGIN_LOCK_CLEAR_REQUEST = request_alternatives("LoginLockClear", [
    alternative(LoginLockClearSerializer, "LoginLockClearUsername", without=("ip_address",),
                username=serializers.CharField(max_length=150)),
    alternative(LoginLockClearSerializer, "LoginLockClearAddress", without=("username",), ip_address=_IPAddress()),
])


class LockClearers(BasePermission):
    message = "Clearing a login lock needs the administrator or the role QC officer."

    def has_permission(self, request, view) -> bool:
        return logins.may_clear_locks(request.user)


class LoginLockClearView(APIView):
    """Clear the login lock of a user name and/or a client address (administrator or QC officer; audited)."""

    permission_classes = [IsAuthenticated, LockClearers]  # 403 before the body is read

    @extend_schema(request=LOGIN_LOCK_CLEAR_REQUEST,
                   responses={200: inline_serializer("LoginLockCleared", {"cleared": serializers.IntegerField()})})
    def post(self, request):
        return Response({"cleared": login_lock_clear(actor=request.user, **request_parse(LoginLockClearSerializer,
                                                                                          request))})


class MeView(APIView):
    """Who the caller is: user name, printed name (as on signatures) and roles."""

    @extend_schema(
        responses={200: inline_serializer("Me", {
            "username": serializers.CharField(), "first_name": serializers.CharField(),
            "last_name": serializers.CharField(), "printed_name": serializers.CharField(),
            "email": serializers.CharField(), "roles": serializers.ListField(child=serializers.CharField()),
            "is_superuser": serializers.BooleanField(),
        })}
    )
    def get(self, request):
        return Response(user_profile(user=request.user))


class AuditVerifiers(BasePermission):
    message = "Verifying the audit trail needs the role QC officer."

    def has_permission(self, request, view) -> bool:
        return roles.may_verify_audit(request.user)


class ChainProblemSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="the first entry the problem concerns")
    kind = serializers.ChoiceField(choices=["gap", "link", "hmac", "anchor", "truncated", "checkpoint"])
    detail = serializers.CharField()


class AuditVerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    entries_checked = serializers.IntegerField()
    head = inline_serializer("ChainHead", {"sequence": serializers.IntegerField(), "hash": serializers.CharField()})
    anchors_checked = serializers.IntegerField()
    problems = ChainProblemSerializer(many=True)
    files_checked = serializers.IntegerField(help_text="stored files re-hashed against their recorded SHA-256")
    file_problems = inline_serializer("StoredFileProblem", {
        "model": serializers.CharField(), "id": serializers.CharField(), "file": serializers.CharField(),
        "problem": serializers.ChoiceField(choices=["missing", "changed"])}, many=True)


class AuditVerificationView(APIView):
    """Recompute the whole audit chain now (every HMAC, link, gap and anchor, as ``manage.py verify_audit``)
    and return the report. Read-only; a broken chain is still 200, with ``ok`` false and every problem."""

    permission_classes = [IsAuthenticated, AuditVerifiers]

    @extend_schema(responses={200: AuditVerificationSerializer})
    def get(self, request):
        return Response(audit_chain_verify().as_dict())
