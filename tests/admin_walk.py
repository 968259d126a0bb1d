"""Walking the admin site's URL patterns, for the tests that visit every admin page
(the permission matrix, the escaping walk)."""

from __future__ import annotations

import re

from django.contrib import admin
from django.urls import URLResolver


def admin_patterns(patterns=None, prefix=""):
    """(key, route) of every pattern of the admin site, nested includes flattened.

    Unnamed patterns are keyed like their named neighbours: the bare ``<id>/`` redirect
    as ``<app>_<model>_object``, the final catch-all as ``catch_all``.
    """
    patterns = admin.site.get_urls() if patterns is None else patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from admin_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
            continue
        route = prefix + str(pattern.pattern)
        if pattern.name:
            yield pattern.name, route
        elif route == "(?P<url>.*)$":
            yield "catch_all", route
        elif match := re.fullmatch(r"(\w+)/(\w+)/<path:object_id>/", route):
            yield f"{match[1]}_{match[2]}_object", route
        else:
            yield f"unnamed:{route}", route
