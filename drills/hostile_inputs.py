"""The hostile drill's inputs (injection strings, odd Unicode, text no field may keep) and
the outcome of one request."""

from __future__ import annotations

from dataclasses import dataclass

INJECTIONS = [
    "'; DROP TABLE support_ticket; --",
    '" OR 1=1 --',
    "1' UNION SELECT username, password FROM auth_user --",
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    "{{ settings.SECRET_KEY }}",
    "%(password)s %s %%",
    "../../../../etc/passwd",
]
UNICODE = [
    "Ünïcödé ✓ 日本語 العربية",
    "emoji 👩‍💻🔥 and a flag 🇺🇦",
    "right-to-left \u202eoverride\u202c",
    "zero\u200bwidth\u200djoiner\ufeff",
    "combining e\u0301\u0301\u0301",
    "\U0001d56c\U0001d591\U0001d595\U0001d58d\U0001d586 astral plane",
]
BAD_TEXT = ["nul \u0000 byte", "lone surrogate \ud800", "\u0000"]
# In a form an unpaired surrogate arrives as invalid UTF-8, which Django decodes to U+FFFD:
# harmless, so only NUL is refused there.
BAD_FORM_TEXT = ["nul \u0000 byte", "\u0000"]


@dataclass
class Outcome:
    target: str
    case: str
    expect: str  # "accepted" | "4xx" | "message"
    status: int | None
    result: str  # what happened: "accepted" | "4xx" | "message" | "5xx" | ...

    @property
    def ok(self) -> bool:
        return self.result == self.expect


def classify(status: int | None) -> str:
    if status is None:
        return "no answer"
    if status >= 500:
        return "5xx"
    if 400 <= status < 500:
        return "4xx"
    return "accepted"
