"""Reading what a page told the person, the same way in every test."""

from __future__ import annotations

from django.contrib.messages import get_messages


def messages_of(response) -> list[str]:
    """The messages (Django's messages framework) the response's request left, in order."""
    return [str(m) for m in get_messages(response.wsgi_request)]
