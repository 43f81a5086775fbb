"""Our token authentication (``cmlims.api.authentication``) against django-rest-knox's, per request.

Not part of ``make bench`` (knox is not a dependency: README "Design decisions" says why). Run it with knox
installed in a scratch environment: ``pip install django-rest-knox && python benchmarks/compare_tokens_knox.py``.
It counts the queries one authenticated request costs, for a user holding one live token and then also
five expired ones (which we keep for ``?all=1`` and the audit trail; knox deletes them), in a throwaway
SQLite database.
"""

from __future__ import annotations

import os
import sys
import timeit
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402
from django.conf import settings  # noqa: E402

# The test settings plus knox's app and model (before setup), so both schemes use the same database.
settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "knox"]
settings.REST_KNOX = {"TOKEN_TTL": settings.CMLIMS_TOKEN_TTL}
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from knox.auth import TokenAuthentication  # noqa: E402
from knox.models import AuthToken  # noqa: E402
from rest_framework.test import APIRequestFactory  # noqa: E402

from cmlims.api.authentication import ExpiringTokenAuthentication  # noqa: E402
from cmlims.services import api_token_issue  # noqa: E402

PASSWORD = "bench-password-1"  # noqa: S105


def queries(scheme, key: str) -> list[str]:
    request = APIRequestFactory().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
    with CaptureQueriesContext(connection) as captured:
        scheme.authenticate(request)
    return [q["sql"].split()[0] for q in captured]


def per_auth_us(scheme, key: str, count: int = 2000) -> float:
    request = APIRequestFactory().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
    return min(timeit.repeat(lambda: scheme.authenticate(request), number=count, repeat=3)) / count * 1e6


def main() -> int:
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, serialize=False)
    user = get_user_model().objects.create_user("bench", password=PASSWORD)
    ours, knox = ExpiringTokenAuthentication(), TokenAuthentication()
    our_key, _ = api_token_issue(username="bench", password=PASSWORD)
    _, knox_key = AuthToken.objects.create(user)
    print("-- one live token")
    print(f"ours: {queries(ours, our_key)}, {per_auth_us(ours, our_key):.0f} us/auth")
    print(f"knox: {queries(knox, knox_key)}, {per_auth_us(knox, knox_key):.0f} us/auth")
    for _ in range(5):
        token, _ = AuthToken.objects.create(user)
        AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(hours=1))
    print("-- plus five expired tokens (ours: one SELECT by the unique digest whatever the user holds)")
    print(f"knox, first request: {queries(knox, knox_key)}")
    print(f"knox afterwards: {queries(knox, knox_key)}; knox rows left: {AuthToken.objects.filter(user=user).count()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
