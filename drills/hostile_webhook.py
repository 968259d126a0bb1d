"""The hostile drill's requests to the webhook: each case with the answer and the stored
row the contract's table says it gets."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections import Counter

from drills import Checks
from drills.hostile_inputs import BAD_TEXT, INJECTIONS, UNICODE, Outcome, classify
from drills.stack import SECRET, Stack, wait_until
from drills.webhooks import PATH, post, sign, support_request

# --- the webhook ---------------------------------------------------------------------


def _webhook_cases() -> list[tuple[str, str, bytes, dict, str, str]]:
    """(case, webhook id, body, headers, expected outcome, stored as) for each request."""
    cases = []

    def signed(case, payload, expect, stored, *, body=None, **sign_kwargs):
        webhook_id = f"msg_hostile_{uuid.uuid4().hex[:12]}"
        text = body if body is not None else json.dumps(payload)
        if isinstance(text, bytes):  # not UTF-8: signed over the bytes, as the spec says
            headers = sign(webhook_id, "", **sign_kwargs)
            key = base64.b64decode(SECRET.removeprefix("whsec_"))
            signed_bytes = f"{webhook_id}.{headers['webhook-timestamp']}.".encode() + text
            mac = hmac.new(key, signed_bytes, hashlib.sha256).digest()
            headers["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
        else:
            headers = sign(webhook_id, text, **sign_kwargs)
        data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        cases.append((case, webhook_id, data, headers, expect, stored))
        return webhook_id, data, headers

    def raw(case, headers, expect="4xx", body=None):
        webhook_id = headers.get("webhook-id", f"msg_hostile_{uuid.uuid4().hex[:12]}")
        data = body or json.dumps(support_request(0)).encode()
        cases.append((case, webhook_id, data, headers, expect, "none"))

    good = json.dumps(support_request(0))
    # Signatures: missing, wrong, malformed, stale, from the future.
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        headers = sign(f"msg_hostile_{uuid.uuid4().hex[:12]}", good)
        del headers[header]
        raw(f"no {header} header", headers)
    raw("no headers at all", {"Content-Type": "application/json"})
    for _n in range(4):
        wid = f"msg_hostile_{uuid.uuid4().hex[:12]}"
        raw(
            "wrong secret",
            sign(wid, good, secret="whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="),
        )
    for bad in (
        "v1",
        "v1,",
        "v1,!!!notbase64",
        "v2,abc",
        "v1," + "A" * 5000,
        "ü,ñ",
        "v1,dGVzdA== v1,",
        " ",
        "v1a,dGVzdA==",
        "v1,\u202e",
    ):
        headers = sign(f"msg_hostile_{uuid.uuid4().hex[:12]}", good)
        headers["webhook-signature"] = bad
        raw(f"malformed signature {bad[:16]!r}", headers)
    now = dt.datetime.now(dt.UTC)
    for label, at in (
        ("stale (10 min)", now - dt.timedelta(minutes=10)),
        ("stale (1 year)", now - dt.timedelta(days=365)),
        ("future (10 min)", now + dt.timedelta(minutes=10)),
        ("future (1 year)", now + dt.timedelta(days=365)),
    ):
        raw(f"{label} timestamp", sign(f"msg_hostile_{uuid.uuid4().hex[:12]}", good, at=at))
    for bad in ("abc", "-1", "1e10", "99999999999999999999999", "", "١٢٣"):
        headers = sign(f"msg_hostile_{uuid.uuid4().hex[:12]}", good)
        headers["webhook-timestamp"] = bad
        raw(f"timestamp {bad!r}", headers)
    headers = sign(f"msg_hostile_{uuid.uuid4().hex[:12]}", good)
    headers["webhook-id"] = "x" * 5000
    raw("5,000-character webhook id (signature for another id)", headers)
    # Signed, but not JSON / not the schema / too big: 422 and kept as rejected, or 413.
    for body in (
        "{",
        "not json",
        "",
        "{'single': 'quotes'}",
        '{"a": 1,}',
        "[" * 50_000,
        '{"a": NaN}',
        "\ufeff{}",
        "null",
        '"just a string"',
    ):
        signed(f"not JSON {body[:12]!r}", None, "4xx", "rejected", body=body)
    signed("not UTF-8", None, "4xx", "rejected", body=b'{"type": "\xff\xfe"}')
    for label, payload in (
        ("a JSON list", [1, 2, 3]),
        ("a JSON number", 42),
        ("null data", {"type": "support.request", "timestamp": now.isoformat(), "data": None}),
        ("unknown type", {**support_request(0), "type": "support.explode"}),
        ("type is a number", {**support_request(0), "type": 7}),
        ("no timestamp", {k: v for k, v in support_request(0).items() if k != "timestamp"}),
        ("bad timestamp", {**support_request(0), "timestamp": "yesterday"}),
        ("subject is a number", support_request(0, subject=12345)),
        ("subject is a list", support_request(0, subject=["a", "b"])),
        ("subject empty", support_request(0, subject="")),
        ("subject 201 chars", support_request(0, subject="s" * 201)),
        ("subject 100,000 chars", support_request(0, subject="s" * 100_000)),
        ("message 20,001 chars", support_request(0, message="m" * 20_001)),
        ("user is a string", support_request(0, user="jo@acme.com")),
        ("email not an email", support_request(0, user={"email": "not-an-email", "name": "x"})),
        ("severity unknown", support_request(0, severity="apocalyptic")),
        ("category is null", support_request(0, category=None)),
        ("tenant empty", support_request(0, tenant_id="")),
        ("tenant 101 chars", support_request(0, tenant_id="t" * 101)),
        ("tenant is an object", support_request(0, tenant_id={"$ne": None})),
        ("extra nested junk", {**support_request(0), "data": {"deep": [[[[{}]]]]}}),
        (
            "error spike, rate is a string",
            {
                "type": "incident.error_spike",
                "timestamp": now.isoformat(),
                "data": {
                    "tenant_id": "t",
                    "fingerprint": "F",
                    "error_rate": "lots",
                    "window_minutes": 5,
                },
            },
        ),
    ):
        signed(label, payload, "4xx", "rejected")
    for text in BAD_TEXT:
        signed(f"{text[:14]!r} in the subject", support_request(0, subject=text), "4xx", "rejected")
    signed("over 256 KiB", support_request(0, message="m" * 300_000), "4xx", "none")
    # Valid events with hostile-looking text: accepted, stored verbatim.
    for text in INJECTIONS + UNICODE:
        signed(
            f"valid, subject {text[:20]!r}",
            support_request(0, subject=text, message=text),
            "accepted",
            "accepted",
        )
    # A retry with a different body under an accepted id: a duplicate, not a second event.
    wid, _, _ = signed(
        "valid, later replayed with another body", support_request(1), "accepted", "accepted"
    )
    replay = json.dumps(support_request(2, subject="replayed with other content"))
    cases.append(
        (
            "same id, other body (replay)",
            wid,
            replay.encode(),
            sign(wid, replay),
            "accepted",
            "accepted",
        )
    )
    return cases


def webhook_drill(stack: Stack, checks: Checks) -> list[Outcome]:
    cases = _webhook_cases()
    outcomes = []
    for case, _, body, headers, expect, _ in cases:
        status, _, _ = post(stack.base, PATH, body, headers)
        outcomes.append(Outcome("webhook", case, expect, status, classify(status)))
    for method in ("GET", "PUT", "DELETE"):
        status, _, _ = post(stack.base, PATH, b"", {}, method=method)
        outcomes.append(Outcome("webhook", f"{method} method", "4xx", status, classify(status)))
    # What was stored, by webhook id.
    ids = [c[1][:200] for c in cases]
    stored = dict(
        stack.sql(
            "SELECT webhook_id, status FROM support_webhookevent WHERE webhook_id = ANY(%s)", [ids]
        )
    )
    wrong = []
    for case, webhook_id, _, _, _, expected in cases:
        status = stored.get(webhook_id[:200])
        got = {None: "none", "rejected": "rejected"}.get(status, "accepted")
        if got != expected and not (expected == "none" and webhook_id[:200] in ids[:0]):
            wrong.append(f"{case}: stored {got}, expected {expected}")
    accepted = [c for c in cases if c[5] == "accepted"]
    wait_until(
        lambda: (
            stack.scalar(
                "SELECT count(*) FROM support_webhookevent WHERE webhook_id = ANY(%s) "
                "AND status = 'processed'",
                [[c[1] for c in accepted]],
            )
            >= len({c[1] for c in accepted})
        ),
        60,
    )
    subjects = dict(
        stack.sql(
            "SELECT e.webhook_id, t.subject FROM support_ticket t JOIN support_webhookevent e "
            "ON e.id = t.webhook_event_id WHERE e.webhook_id = ANY(%s)",
            [[c[1] for c in accepted]],
        )
    )
    verbatim = 0
    for case, webhook_id, body, _, _, _ in accepted:
        if case.startswith("valid, subject"):
            expected = json.loads(body)["data"]["subject"]
            if subjects.get(webhook_id) == expected:
                verbatim += 1
            else:
                wrong.append(f"{case}: ticket subject {subjects.get(webhook_id)!r}")
    rejected_tickets = stack.scalar(
        "SELECT count(*) FROM support_ticket t JOIN support_webhookevent e "
        "ON e.id = t.webhook_event_id WHERE e.webhook_id = ANY(%s) AND e.status <> 'processed'",
        [ids],
    )
    counts = Counter(stored.values())
    print(
        f"  webhook: {len(outcomes)} requests; events stored {dict(counts)}; "
        f"{len({c[1] for c in accepted})} accepted ids, {len(subjects)} tickets, "
        f"{verbatim} hostile-text subjects stored verbatim"
    )
    checks.check(
        not wrong,
        "each webhook id stored as the contract says"
        + ("" if not wrong else ": " + "; ".join(wrong[:8])),
    )
    checks.check(rejected_tickets == 0, "no ticket from a rejected event")
    return outcomes
