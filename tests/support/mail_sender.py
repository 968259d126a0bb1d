"""A mail provider's side of the inbound email webhook (docs/contracts/email.md, Inbound 1):
raw messages, signed over their exact bytes (UTF-8 or not) with Standard Webhooks."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid

from tests.support.sender import SECRET

URL = "/webhooks/inbound-email/"


def message(
    *,
    sender: str = "Pat Doe <pat@acme.com>",
    subject: str = "Export is broken",
    message_id: str | None = "<m1@mail.acme.com>",
    body: str = "The export button spins forever.",
    headers: str = "",
) -> bytes:
    """A plain-text email as a provider hands it over (CRLF line ends)."""
    lines = [f"From: {sender}", "To: support@acme.example", f"Subject: {subject}"]
    if message_id is not None:
        lines.append(f"Message-ID: {message_id}")
    lines.append("Content-Type: text/plain; charset=utf-8")
    head = "\r\n".join(lines) + "\r\n" + headers
    return (head + "\r\n" + body + "\r\n").encode()


def signature_headers(
    raw: bytes, *, webhook_id: str | None = None, secret: str = SECRET, at=None
) -> dict[str, str]:
    """The Standard Webhooks headers for ``raw``: the HMAC-SHA256 of
    ``<id>.<timestamp>.<body bytes>`` under the secret, computed here from the scheme
    rather than by the package opsdesk verifies with."""
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    seconds = int((at or dt.datetime.now(dt.UTC)).timestamp())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{seconds}.".encode() + raw, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": f"v1,{base64.b64encode(mac).decode()}",
    }


def push(client, raw: bytes, *, content_type: str = "message/rfc822", **signing):
    """POST ``raw``, signed, to the inbound email webhook."""
    headers = signature_headers(raw, **signing)
    # CONTENT_TYPE given again: the test client leaves it off an empty body.
    return client.post(
        URL, data=raw, content_type=content_type, headers=headers, CONTENT_TYPE=content_type
    )
