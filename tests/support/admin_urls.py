"""Every URL the admin serves, as (name, path) with each parameter filled by an id that names nothing."""

import re

from django.urls import URLPattern, URLResolver


def admin_urls(patterns, prefix="/admin/"):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from admin_urls(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            route = re.sub(r"<(?:\w+:)?(\w+)>", "999999", prefix + str(entry.pattern))
            if "^" not in route and "(?P" not in route:  # the catch-all redirect patterns have no fixed route
                yield entry.name, route
