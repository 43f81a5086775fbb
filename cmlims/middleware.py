"""Request id (taken from X-Request-ID or made up, kept for the audit trail and echoed back) and the refusal
of NUL characters in URLs."""

import re
import uuid

from django.http import JsonResponse

from cmlims import context

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
