"""The one exception handler: every API error has the body ``{"code", "message", ...}``."""

import sqlite3
import sys

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cmlims.exceptions import ApplicationError, from_django_validation_error

_DRF_CODES = {
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "not_authenticated",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "throttled",
    drf.ParseError: "parse_error",
    drf.ValidationError: "invalid",
}


def _flatten(detail) -> list[str]:
    if isinstance(detail, list):
        return [str(m) for item in detail for m in _flatten(item)]
    if isinstance(detail, dict):
        return [f"{k}: {m}" for k, v in detail.items() for m in _flatten(v)]
    return [str(detail)]


def _validation_body(detail) -> dict:
    if isinstance(detail, dict):
        fields = {name: _flatten(value) for name, value in detail.items()}
    else:
        fields = {"non_field_errors": _flatten(detail)}
    message = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
    return {"code": "invalid", "message": message or "Invalid input.", "fields": fields}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response(exc.as_body(), status=exc.status_code)
        if exc.status_code == 401:
            response["WWW-Authenticate"] = "Token"
        return response
    if isinstance(exc, DjangoValidationError):
        err = from_django_validation_error(exc)
        return Response(err.as_body(), status=400)
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    if isinstance(exc, drf.ValidationError):
        response.data = _validation_body(exc.detail)
        return response
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    body = {"code": code, "message": " ".join(_flatten(exc.detail))}
    if isinstance(exc, drf.Throttled) and exc.wait is not None:
        body["retry_after"] = int(exc.wait)
    response.data = body
    return response


def api_not_found(request, exception=None):
    """handler404 for unknown routes: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": f"No route for {request.path}."}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


DATABASE_RETRY_AFTER_S = 5
DATABASE_UNAVAILABLE = ("The database could not be reached (it may be restarting); try again in a few seconds. "
                        "A change this request asked for was not confirmed: check it is not recorded before "
                        "repeating it.")


# SQLite raises OperationalError for a statement it cannot run as well as for a file it cannot reach: only
# these are an outage to retry; anything else is a defect of ours (a 500, logged with its traceback).
_SQLITE_UNAVAILABLE = ("database is locked", "database table is locked", "unable to open", "disk i/o error")


def is_database_unavailable(exc: BaseException | None) -> bool:
    """A lost or refused database connection (a restart, a failover): the request may be retried."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    cause = exc.__cause__
    if isinstance(cause, sqlite3.Error):
        return any(text in str(cause).lower() for text in _SQLITE_UNAVAILABLE)
    return True


def database_unavailable(request) -> HttpResponse:
    """503 with Retry-After, not a 500: nothing in the request was wrong, and a client or load balancer
    retries a 503 (tests/reliability/test_database_restart.py)."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "database_unavailable", "message": DATABASE_UNAVAILABLE,
                                 "retry_after": DATABASE_RETRY_AFTER_S}, status=503)
    else:
        response = HttpResponse(f"<!doctype html><title>Service unavailable</title><h1>Service unavailable</h1>"
                                f"<p>{DATABASE_UNAVAILABLE}</p>", status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
    return response


def api_server_error(request):
    # handler500 runs inside Django's except block: a database outage raised outside a view (a middleware's
    # session save) is answered like one raised inside.
    if is_database_unavailable(sys.exc_info()[1]):
        return database_unavailable(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "server_error", "message": "Internal error; it has been logged."}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
