"""The CRM's webhook against a live server, the real broker and a real Celery worker: a
contract activated by a signed event gets its onboarding checklist from the worker."""

import pytest
from celery.contrib.testing.worker import start_worker

from customers.models import Contract
from onboarding.models import Checklist
from opsdesk.celery import app
from support.models import WebhookEvent
from tests.customers.crm_sender import CRM_SECRET, CRM_URL, account, contract, crm_signed
from tests.live import post, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET]


def deliver(live_server, payload, webhook_id) -> int:
    body, headers = crm_signed(payload, webhook_id=webhook_id)
    return post(live_server.url + CRM_URL, body, {**headers, "Content-Type": "application/json"})


def test_a_contract_activated_by_the_crm_gets_its_checklist_from_the_worker(
    live_server, manager, templates
):
    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        # The contract first: it waits for its account, which brings it forward.
        assert deliver(live_server, contract(), "msg_live_c") == 202
        assert deliver(live_server, account(), "msg_live_a") == 202
        assert wait_for(lambda: Checklist.objects.filter(contract__crm_id="800Dn00000C42").exists())
    checklist = Checklist.objects.get()
    assert checklist.contract == Contract.objects.get(crm_id="800Dn00000C42")
    # Growth with SSO and Slack, managed by Alice: the kick-off call and SSO set-up.
    assert sorted(checklist.tasks.values_list("title", flat=True)) == [
        "Configure SSO",
        "Kick-off call with Acme Corp",
    ]
    assert sorted(WebhookEvent.objects.values_list("webhook_id", "status", "warning")) == [
        ("msg_live_a", "processed", ""),
        ("msg_live_c", "processed", ""),
    ]
    assert checklist.history.get().history_actor == "task:checklist_generate"
