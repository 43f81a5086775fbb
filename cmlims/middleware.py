"""Request id (taken from X-Request-ID or made up, kept for the audit trail and echoed back), the refusal
of NUL characters in URLs and of oversized bodies before they are read, and JSON error bodies under /api/
whatever DEBUG says."""

import logging
import re
import time
import uuid

from django.conf import settings
from django.contrib.auth import logout
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found

from cmlims import context
from cmlims.exceptions import NotFound

_SAFE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        with context.request_scope(request_id=request_id, request=request):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


# What a multipart body may carry beyond its file: boundaries, part headers and the form's other fields.
UPLOAD_ENVELOPE_BYTES = 64 * 1024


class RefuseOversizeBodyMiddleware:
    """413 ``payload_too_large`` for a request whose declared ``Content-Length`` is over
    ``CMLIMS_MAX_UPLOAD_BYTES`` (plus the multipart envelope), answered before a byte of the body is read: a
    client cannot make a web process buffer a gigabyte only to be refused. A body within the envelope but with
    a file over the limit is refused by the upload view itself."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.CMLIMS_MAX_UPLOAD_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0  # Django reads an unparsable length as none
        if declared > limit + UPLOAD_ENVELOPE_BYTES:
            response = JsonResponse(
                {"code": "payload_too_large",
                 "message": f"The request body is {declared} bytes; uploads are limited to {limit} bytes.",
                 "limit": limit}, status=413)
            response["Connection"] = "close"  # the unread body must not be taken for the next request
            return response
        return self.get_response(request)


class RefuseNulMiddleware:
    """400 for a NUL character in the path or the query string. PostgreSQL cannot store or compare text
    with NUL, so a ``/vials/%00/trace/`` or ``?q=%00`` would otherwise reach a lookup and answer 500.
    (Form and JSON fields refuse NUL themselves: Django's and DRF's CharFields validate it.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bad = ["path"] if "\x00" in request.path else []
        bad += sorted({key for key, values in request.GET.lists()
                       if "\x00" in key or any("\x00" in v for v in values)})
        if bad:
            problem = "Null characters are not allowed."
            return JsonResponse(
                {"code": "invalid", "message": "; ".join(f"{name}: {problem}" for name in bad),
                 "fields": {name.replace("\x00", "\\x00"): [problem] for name in bad}},
                status=400,
            )
        return self.get_response(request)


logger = logging.getLogger("cmlims.api")


class ApiJsonErrorsMiddleware:
    """Under /api/ every error is the project's JSON body, DEBUG or not. With DEBUG on (the demo) Django would
    answer an unknown route with its HTML 404 page and a bug with a 100 KB HTML traceback; a client gets
    ``{"code": "not_found"}`` and ``{"code": "server_error"}`` instead, and the traceback goes to the log.
    A database that cannot be reached (restarting, failing over) is a 503 with Retry-After, admin pages too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.path.startswith("/api/") and response.status_code == 404
                and response.get("Content-Type", "").startswith("text/html")):
            from cmlims.api.exceptions import api_not_found

            return api_not_found(request)
        return response

    def process_exception(self, request, exception):
        from cmlims.api.exceptions import database_unavailable, is_database_unavailable

        if is_database_unavailable(exception):
            logger.warning("database unavailable on %s %s (request %s): %s", request.method, request.path,
                           getattr(request, "request_id", "-"), exception)
            return database_unavailable(request)
        if not request.path.startswith("/api/") and isinstance(exception, NotFound):
            # A selector's "no such record" raised from an admin view is the 404 page, not a server error.
            return page_not_found(request, Http404(exception.message))
        if not request.path.startswith("/api/") or isinstance(exception, Http404):
            return None  # Django's own handling (and DRF's, for its views) answers these
        from cmlims.api.exceptions import api_server_error

        logger.error("internal error on %s %s (request %s)", request.method, request.path,
                     getattr(request, "request_id", "-"), exc_info=exception)
        return api_server_error(request)


SESSION_LAST_SEEN = "cmlims_last_seen"


def session_mark_seen(session) -> None:
    """Note in the session that its user was just active (at login, and by the middleware below)."""
    session[SESSION_LAST_SEEN] = time.time()


class SessionIdleTimeoutMiddleware:
    """A browser session ends after ``CMLIMS_SESSION_IDLE`` without a request: the next request is anonymous
    (the admin sends it to the login page; the logout is audited). The last-seen time is set at login and
    rewritten at most once a minute, so a busy user's session is not saved on every request."""

    TOUCH_EVERY_SECONDS = 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            last_seen = request.session.get(SESSION_LAST_SEEN)
            if last_seen is not None and now - last_seen > settings.CMLIMS_SESSION_IDLE.total_seconds():
                logout(request)  # flushes the session; request.user becomes anonymous
            elif last_seen is None or now - last_seen >= self.TOUCH_EVERY_SECONDS:
                session_mark_seen(request.session)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """The headers Django's SecurityMiddleware does not set (it sets nosniff, Referrer-Policy, COOP and HSTS;
    XFrameOptionsMiddleware the frame refusal): a Content-Security-Policy that forbids framing, plugins, a
    foreign <base> and forms posting elsewhere, a Permissions-Policy with no camera, microphone or location,
    and ``Cache-Control: no-store`` on API answers (records must not linger in shared caches)."""

    CSP = "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"
    PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.CSP)
        response.headers.setdefault("Permissions-Policy", self.PERMISSIONS)
        if request.path.startswith("/api/v1/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
