"""DRF throttles (rates: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]), counted in the shared cache.

The token endpoint is throttled per client address; signatures and uploads per user. Signing and upload
operations are found by what they read, not by a list of views: every API body goes through
``request_parse``, which throttles a body declared with the signature components (``SignatureInput``) or with
a file field, so a new signing or upload endpoint is throttled without being named here.
"""

from __future__ import annotations

from rest_framework import exceptions, throttling

from cmlims.logins import client_address


class LoginThrottle(throttling.SimpleRateThrottle):
    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class _PerUserThrottle(throttling.SimpleRateThrottle):
    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = user.pk if user is not None and user.is_authenticated else client_address(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignatureThrottle(_PerUserThrottle):
    scope = "signature"


class UploadThrottle(_PerUserThrottle):
    scope = "upload"


def body_throttle(request, *, signs: bool, uploads: bool) -> None:
    """Raise 429 ``throttled`` (with ``retry_after``) when the caller has signed or uploaded too often."""
    chosen = [cls for cls, applies in ((SignatureThrottle, signs), (UploadThrottle, uploads)) if applies]
    for throttle_class in chosen:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            raise exceptions.Throttled(wait=throttle.wait())
