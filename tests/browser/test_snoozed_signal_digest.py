"""A manager snoozes a signal in a real browser, and the next day's digest keeps it out:
sent as beat sends it (``send_digests``: the day's sweep, then each manager's email), it
lists neither the signal as new nor as still open and counts it in its snoozed line; the
digest preview in the browser says the same, word for word."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from audit.context import acting_as
from support.models import Ticket
from tests import builders
from tests.browser.session import sign_in
from tests.personas import PASSWORD
from tests.records import active_contract

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def quiet_customer(name: str, manager):
    """A customer of ``manager`` whose contract is far from renewal and who never reported
    usage: dormant and no usage data from the first sweep on."""
    with acting_as("test:fixture"):
        customer = builders.customer(
            external_id=name.lower().replace(" ", "-"), name=name, account_manager=manager
        )
    active_contract(customer, end_date=timezone.now().date() + dt.timedelta(days=400))
    return customer


def section(text: str, heading: str) -> list[str]:
    """The non-blank lines of the plain-text digest's part under ``heading``, up to the
    next part's heading ("HEALTHY (1)"), the snoozed line or the signature."""
    lines = text.splitlines()
    start = lines.index(heading)
    part = []
    for line in lines[start + 1 :]:
        if re.fullmatch(r"[A-Z][A-Z ]+ \(\d+\)", line) or line.startswith(("Snoozed:", "--")):
            break
        if line.strip():
            part.append(line)
    return part


def test_a_snoozed_signal_leaves_the_next_digest_and_is_counted_as_snoozed(
    live_server, page, screenshot, manager
):
    today = timezone.now().date()
    tomorrow = today + dt.timedelta(days=1)
    quiet = quiet_customer("Quiet Co", manager)
    loud = quiet_customer("Loud Co", manager)
    # Today's digest: the sweep opens both customers' signals.
    call_command("send_digests", "--date", today.isoformat())
    [first] = mail.outbox
    assert first.subject.startswith(f"Usage digest {today:%a} {today.day} {today:%b %Y}: 4 new")
    mail.outbox.clear()
    dormant = quiet.health_signals.get(kind="dormant")

    # Alice snoozes Quiet Co's dormant signal from its page, through the confirmation page.
    customer_page = f"{live_server.url}/admin/customers/customer/{quiet.pk}/change/"
    sign_in(page, live_server, manager.username, PASSWORD)
    page.goto(customer_page + "#signals")
    block = page.locator(f'[data-testid="signal"][data-signal="{dormant.pk}"]')
    assert block.get_attribute("data-state") == "open"
    block.get_by_role("link", name="Snooze").click()
    page.wait_for_url(f"**/admin/opsdesk/healthsignal/{dormant.pk}/snooze/?next=*")
    until = today + dt.timedelta(days=7)
    page.get_by_label("Hide from the digest until").fill(until.isoformat())
    page.get_by_label("Why").fill("Customer on holiday")
    with page.expect_navigation():
        page.get_by_role("button", name="Snooze").click()
    # Back on the customer's page, at its signals, told what was done.
    assert page.url == customer_page + "#signals"
    assert page.get_by_text(
        f"Dormant of Quiet Co: snoozed until {until.day} {until:%b %Y}."
    ).is_visible()
    block = page.locator(f'[data-testid="signal"][data-signal="{dormant.pk}"]')
    assert block.get_attribute("data-state") == "snoozed"
    screenshot("snoozed-back-on-the-customer-page")

    # Overnight Loud Co opens an urgent ticket: tomorrow's one new signal.
    with acting_as("test:fixture"):
        builders.ticket(customer=loud, subject="Down", priority=Ticket.Priority.URGENT)

    call_command("send_digests", "--date", tomorrow.isoformat())
    [email] = mail.outbox
    assert email.to == [manager.email]
    day = f"{tomorrow:%a} {tomorrow.day} {tomorrow:%b %Y}"
    assert email.subject == f"Usage digest {day}: 1 new signal, 3 still open (2 customers)"
    text = email.body
    new = section(text, "NEW SINCE YESTERDAY (1)")
    assert [line for line in new if not line.startswith("    ")][:2] == [
        "* Loud Co (loud-co)",
        "  - Urgent tickets: 1 open urgent ticket",
    ]
    still = [line for line in section(text, "STILL OPEN (3)") if line.startswith(("*", "  - "))]
    covers = f"{today.day} {today:%b %Y}"
    assert still == [
        "* Loud Co (loud-co)",
        "  - Dormant, open for 1 day: no login ever; active contract since 1 Jan 2026",
        f"  - No usage data, open for 1 day: no usage report for {covers}",
        "* Quiet Co (quiet-co)",
        f"  - No usage data, open for 1 day: no usage report for {covers}",
    ]
    assert "Snoozed: 1 signal of 1 customer, hidden until their dates or until worse." in text
    [(html, _mimetype)] = email.alternatives
    assert "Snoozed: 1 signal of 1 customer" in html
    assert len(re.findall(r"\bDormant\b", html)) == 1  # Loud Co's only

    # The preview of tomorrow's digest in the browser agrees.
    page.goto(f"{live_server.url}/admin/opsdesk/digestdelivery/preview/")
    page.get_by_label("Digest date").fill(tomorrow.isoformat())
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state("networkidle")
    mail_frame = page.frame_locator('[data-testid="digest-html"]')
    assert mail_frame.get_by_role("heading").inner_text() == "1 new signal, 3 still open"
    still_open = mail_frame.get_by_test_id("digest-still-open")
    assert still_open.get_by_text("Quiet Co").is_visible()
    assert still_open.get_by_text("Dormant", exact=True).count() == 1  # Loud Co's
    assert mail_frame.get_by_text("Snoozed: 1 signal of 1 customer").is_visible()
    page.locator("summary", has_text="Plain-text part").click()
    assert page.get_by_test_id("digest-text").inner_text().strip() == text.strip()
    screenshot("snoozed-digest-preview")
