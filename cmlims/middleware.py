"""Request id: taken from X-Request-ID or made up, kept for the audit trail and echoed back."""

import re
import uuid

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
