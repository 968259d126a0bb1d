"""Everything from outside is shown as text: hostile values in every text field, and no
admin page that prints one as markup."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.context import acting_as
from customers.models import Customer
from tests.records import active_contract

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


def test_the_digest_preview_shows_the_plain_text_part_as_text(client, manager):
    with acting_as("test:fixture"):
        customer = Customer.objects.create(
            external_id="evil", name=f"Evil {SCRIPT}", account_manager=manager
        )
        active_contract(customer, end_date=dt.date(2027, 12, 31))
    client.force_login(manager)

    page = client.get(
        "/admin/opsdesk/digestdelivery/preview/", {"date": timezone.now().date().isoformat()}
    ).content.decode()

    assert SCRIPT not in page
    assert "* Evil &lt;script&gt;alert(1)&lt;/script&gt;" in page
