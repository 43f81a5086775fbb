from pathlib import Path

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.http import require_GET

from cmlims.health import health


@never_cache
@require_GET
def healthz(request):
    state = health()
    return JsonResponse(state, status=200 if state["ok"] else 503)


FAVICON = Path(__file__).parent / "static" / "cmlims" / "favicon.ico"


@cache_control(max_age=86400, public=True)
@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico whatever the page says: answer it rather than log a 404 on every visit."""
    return HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
