"""A ticket going from its service level's warning to its breach through real parts
(docs/product.md#warnings-and-escalation): the scheduler's sweep runs in a real Celery
worker, the notices are emailed (Django's file backend: one file per email) and posted to
a Slack-compatible webhook on a local port, and the assignee and the team lead see them
in the browser, with the ticket's clock turning from amber to red.

The ticket is opened 50 minutes ago for an Enterprise customer (urgent: 1 h around the
clock, warned at 45 min); then the clock of the whole process moves 11 minutes on."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import pytest
import time_machine
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from audit.context import acting_as
from customers.models import Contract
from kit import roles
from opsdesk.celery import app
from opsdesk.models import ChatPost, Notification
from support import tickets
from support.models import SlaAlert
from support.tasks import sla_alerts_send
from tests import builders
from tests.browser.session import sign_in
from tests.chat_receiver import ChatReceiver
from tests.live import wait_for
from tests.personas import PASSWORD, staff_user
from tests.records import active_contract

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MINE = "/admin/opsdesk/notification/"


def emails(folder: Path) -> list[tuple[str, str]]:
    """(To, Subject) of every email the file backend wrote, in the order written."""
    found = []
    for path in sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
        for chunk in path.read_text().split("-" * 79):
            message = email.message_from_string(chunk.strip(), policy=email.policy.default)
            if message["Subject"]:
                found.append((str(message["To"]), str(message["Subject"])))
    return found


@pytest.fixture
def chat(settings):
    receiver = ChatReceiver()
    settings.OPSDESK_SLACK_WEBHOOK_URL = receiver.url()
    settings.OPSDESK_SLACK_WEBHOOK_URLS = {}
    yield receiver
    receiver.close()


def test_a_ticket_goes_from_warning_to_breach_and_its_people_are_told(
    live_server, page, screenshot, settings, tmp_path, chat, agent, sla_policies
):
    mail = tmp_path / "mail"
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(mail)
    settings.OPSDESK_BASE_URL = live_server.url
    sue = staff_user("sue", roles.SUPPORT)
    olga = staff_user("olga", roles.OPS_LEADS)
    with acting_as("test:fixture"):
        initech = builders.customer(external_id="initech-1", name="Initech")
        active_contract(initech, plan=Contract.Plan.ENTERPRISE)
    opened = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=50)
    with time_machine.travel(opened, tick=False):
        ticket = tickets.ticket_create(
            by=agent,
            subject="Exports fail for every user",
            customer=initech,
            priority="urgent",
            requester_email="pat@initech.example",
        )
        tickets.ticket_assign(ticket=ticket, assignee=sue, by=agent)
    due = opened + dt.timedelta(hours=1)
    assert ticket.first_response_due_at == due
    local = timezone.localtime(due)
    when = f"{local:%-d %b %Y %H:%M} {local.tzname()}"  # one date style (kit.dates)
    warning = f"Ticket #{ticket.pk}: first response due {when}: Exports fail for every user"
    breach = (
        f"Ticket #{ticket.pk} missed its first response target ({when}): "
        "Exports fail for every user"
    )
    assigned = f"Ticket #{ticket.pk} assigned to Sue: Exports fail for every user"

    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        # The scheduler's sweep: the assignee is warned, by email and in the team chat.
        sla_alerts_send.delay()
        assert wait_for(lambda: len(emails(mail)) == 2)
        assert sorted(emails(mail)) == [
            ("sue@opsdesk.test", assigned),
            ("sue@opsdesk.test", warning),
        ]
        assert wait_for(lambda: ChatPost.objects.filter(status=ChatPost.Status.SENT).count() == 2)
        assert sorted(body["text"].splitlines()[0] for _, body in chat.posts) == [
            assigned,
            warning,
        ]

        sign_in(page, live_server, "sue", PASSWORD)
        page.goto(f"{live_server.url}{MINE}")
        assert page.get_by_text(warning).is_visible()
        screenshot("sla-warning-my-notifications")
        page.goto(f"{live_server.url}/admin/support/ticket/{ticket.pk}/change/")
        clock = page.locator(
            "[data-testid=first-response].od-due-soon",
            has_text=re.compile(r"^first response in (9|10) min"),
        )
        assert clock.first.is_visible()
        screenshot("sla-warning-ticket")

        # Eleven minutes later nobody has answered: the breach reaches Sue and Olga.
        with time_machine.travel(timezone.now() + dt.timedelta(minutes=11), tick=True):
            sla_alerts_send.delay()
            assert wait_for(lambda: len(emails(mail)) == 4)
            assert sorted(emails(mail)[2:]) == [
                ("olga@opsdesk.test", breach),
                ("sue@opsdesk.test", breach),
            ]
            assert wait_for(
                lambda: ChatPost.objects.filter(status=ChatPost.Status.SENT).count() == 3
            )
            assert chat.posts[-1][1]["text"].splitlines()[0] == breach

            # The sweep again, as a second scheduler would: nobody is told twice.
            sla_alerts_send.apply()
            assert Notification.objects.count() == 4
            assert list(SlaAlert.objects.order_by("pk").values_list("kind", flat=True)) == [
                "warning",
                "breach",
            ]

            page.reload()
            overdue = page.locator(
                "[data-testid=first-response].od-due-overdue",
                has_text=re.compile(r"^first response overdue by [12] min"),
            )
            assert overdue.first.is_visible()
            screenshot("sla-breach-ticket")
            page.goto(f"{live_server.url}{MINE}")
            assert page.get_by_text(breach).is_visible()
            screenshot("sla-breach-my-notifications")

            page.context.clear_cookies()
            sign_in(page, live_server, olga.username, PASSWORD)
            page.goto(f"{live_server.url}{MINE}")
            assert page.get_by_text(breach).is_visible()
            assert page.get_by_text(warning).count() == 0
            screenshot("sla-breach-team-lead")
