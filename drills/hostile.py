"""``hostile``: 200 hostile requests to the webhook and to the admin's forms (sign-in, a
customer's change form, a ticket's note/reply, the invoice CSV upload, search boxes and
filters), signed in as a staff user with the CSRF token handled like a browser.

Every answer must be below 500; each request has the outcome it should have: accepted
(2xx, or a form saved and redirected), rejected with a 4xx, or rejected with a message
(the form shown again with its error, or a redirect to a page saying "Not saved").
Afterwards the rows are counted: each webhook id stored exactly as the contract's table
says (accepted, rejected for inspection, or not at all), injection strings stored
verbatim where they were valid, and nothing else written.
"""

from __future__ import annotations

from collections import Counter

from drills import Checks, say
from drills.hostile_admin import admin_drill
from drills.hostile_webhook import webhook_drill
from drills.stack import Stack


def main(stack: Stack) -> list[str]:
    checks = Checks("hostile")
    events_before = stack.scalar("SELECT count(*) FROM support_webhookevent")
    outcomes = webhook_drill(stack, checks) + admin_drill(stack, checks)
    by_target = Counter((o.target, o.result) for o in outcomes)
    statuses = Counter(o.status for o in outcomes)
    print(f"  {len(outcomes)} hostile requests; statuses {dict(sorted(statuses.items(), key=str))}")
    for target in dict.fromkeys(o.target for o in outcomes):
        counts = {r: n for (t, r), n in by_target.items() if t == target}
        print(f"    {target:<16} {counts}")
    server_errors = [o for o in outcomes if o.status is None or o.status >= 500]
    wrong = [o for o in outcomes if not o.ok]
    for o in wrong[:20]:
        print(
            f"    unexpected: {o.target} / {o.case}: {o.status} ({o.result}, expected {o.expect})"
        )
    say(
        f"hostile: webhook events {events_before} -> "
        f"{stack.scalar('SELECT count(*) FROM support_webhookevent')}"
    )
    checks.check(len(outcomes) >= 200, f"{len(outcomes)} hostile requests sent")
    checks.check(not server_errors, f"no 5xx or dropped connection ({len(server_errors)})")
    rejected = sum(1 for o in outcomes if o.result in ("4xx", "message"))
    checks.check(
        not wrong,
        f"each request had the outcome it should: {len(outcomes) - len(wrong)} "
        f"of {len(outcomes)} ({rejected} rejected with a 4xx or a message)",
    )
    return checks.failures
