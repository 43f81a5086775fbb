from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from cmlims.health import health


@never_cache
@require_GET
def healthz(request):
    state = health()
    return JsonResponse(state, status=200 if state["ok"] else 503)
