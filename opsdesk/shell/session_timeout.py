"""Staff sessions end after an idle period and, at the latest, a fixed time after sign-in.

The idle limit is Django's own session expiry (``SESSION_COOKIE_AGE``): an expired
session is not loaded, so the admin sends the person to its login page. This middleware
only makes that expiry slide with activity, and adds the absolute cap Django lacks.

Why not ``SESSION_SAVE_EVERY_REQUEST``: it writes the session row on every request. Here
the session is re-saved (which moves its expiry, in the database and in the cookie) at
most once per ``OPSDESK_SESSION_REFRESH_SECONDS``, so the idle limit is exact to within
that margin and a page that polls does not write on every poll.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout

SIGNED_IN_AT = "opsdesk_signed_in_at"
SEEN_AT = "opsdesk_seen_at"


class SessionTimeoutMiddleware:
    """After ``AuthenticationMiddleware``: ends sessions past the absolute cap, slides the rest."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            session_touch(request, now=int(time.time()))
        return self.get_response(request)


def session_touch(request, *, now: int) -> None:
    """Sign the user out once the session is older than the cap; otherwise note the activity.

    Past the cap the request carries on as anonymous, so the admin answers with its
    usual redirect to the login page (and ``next`` back to where the person was).
    """
    session = request.session
    signed_in_at = session.setdefault(SIGNED_IN_AT, now)
    if now - signed_in_at >= settings.OPSDESK_SESSION_MAX_AGE_SECONDS:
        logout(request)
        return
    if now - session.get(SEEN_AT, 0) >= settings.OPSDESK_SESSION_REFRESH_SECONDS:
        # Marks the session modified: SessionMiddleware saves it with a fresh expiry.
        session[SEEN_AT] = now
