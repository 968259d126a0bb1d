"""My notifications and the notification settings page: each staff member's own and
nobody else's, what came from outside shown as text, a fixed number of queries."""

from __future__ import annotations

import pytest

from opsdesk.models import Notification, NotificationPreference
from tests import builders

pytestmark = pytest.mark.django_db

MINE = "/admin/opsdesk/notification/"
SETTINGS = "/admin/opsdesk/notification/preferences/"
SCRIPT = "<script>alert(1)</script>"


def form(**changes) -> dict:
    values = {
        "ticket_assigned": "immediately",
        "customer_replied": "immediately",
        "sla_warning": "immediately",
        "sla_breach": "immediately",
        "case_assigned": "immediately",
        "rollup_minutes": "",
    }
    return {**values, **changes}


def saved(user) -> dict:
    return NotificationPreference.objects.filter(user=user).values(*form()).first()


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead", "superuser"])
def test_every_staff_member_sets_their_own_preferences(client, request, persona):
    user = request.getfixturevalue(persona)
    client.force_login(user)

    page = client.get(SETTINGS)
    assert page.status_code == 200
    assert page.context["form"].initial["ticket_assigned"] == "immediately"  # the default
    assert f"{user.username}@opsdesk.test" in page.content.decode()

    response = client.post(SETTINGS, form(customer_replied="rollup", case_assigned="off"))

    assert response.status_code == 302 and response["Location"] == SETTINGS
    assert saved(user) == form(customer_replied="rollup", case_assigned="off", rollup_minutes=None)
    assert NotificationPreference.objects.get(user=user).history.get().history_actor == (
        user.username
    )
    page = client.get(SETTINGS)
    assert "Your notification preferences are saved." in page.content.decode()
    assert page.context["form"].initial["customer_replied"] == "rollup"


def test_the_page_changes_only_the_signed_in_persons_preferences(client, agent, superuser):
    client.force_login(superuser)
    client.post(SETTINGS, {**form(sla_warning="off"), "user": agent.pk, "user_id": agent.pk})
    client.post(f"{SETTINGS}?user={agent.pk}", form(sla_breach="off"))

    assert saved(agent) is None
    assert saved(superuser) == form(sla_breach="off", rollup_minutes=None)


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"ticket_assigned": "sometimes"}, "ticket_assigned", "Select a valid choice."),
        ({"rollup_minutes": "2"}, "rollup_minutes", "Ensure this value is greater than or"),
        ({"rollup_minutes": "99999"}, "rollup_minutes", "Ensure this value is less than or"),
        ({"rollup_minutes": "\x00"}, "rollup_minutes", "Enter a whole number."),
    ],
)
def test_a_value_that_is_not_a_choice_is_refused_and_nothing_saved(
    client, agent, changes, field, error
):
    client.force_login(agent)
    response = client.post(SETTINGS, form(**changes))
    assert response.status_code == 200
    assert response.context["form"].errors[field][0].startswith(error)
    assert saved(agent) is None


def test_a_person_without_an_email_address_is_told_nothing_can_be_emailed(client, agent):
    agent.email = ""
    agent.save()
    client.force_login(agent)
    assert 'data-testid="no-email"' in client.get(SETTINGS).content.decode()


def test_someone_signed_out_or_not_staff_is_sent_to_the_login(client, outsider):
    for url in (SETTINGS, MINE):
        assert client.get(url)["Location"].startswith("/admin/login/")
        assert client.post(url, form())["Location"].startswith("/admin/login/")
    client.force_login(outsider)
    assert client.post(SETTINGS, form())["Location"].startswith("/admin/login/")
    assert not NotificationPreference.objects.exists()


def test_my_notifications_lists_mine_only_and_another_persons_is_not_found(client, agent, ops_lead):
    mine = builders.notification(recipient=agent, subject="Ticket #7 assigned to Sam: Export")
    theirs = builders.notification(recipient=ops_lead, subject="Case #3 assigned to Olga")
    client.force_login(agent)

    page = client.get(MINE)
    assert [row.pk for row in page.context["cl"].result_list] == [mine.pk]
    assert "Case #3" not in page.content.decode()
    assert client.get(f"{MINE}{mine.pk}/change/").status_code == 200
    assert client.get(f"{MINE}{theirs.pk}/change/").status_code == 302
    assert client.get(f"{MINE}{theirs.pk}/history/").status_code == 403
    version = theirs.history.get().history_id
    assert client.get(f"{MINE}{theirs.pk}/history/{version}/").status_code == 403
    assert client.post(f"{MINE}{mine.pk}/change/", {"subject": "x"}).status_code == 403
    assert client.post(f"{MINE}{mine.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Notification.objects.count() == 2


def test_what_came_from_outside_is_shown_as_text_and_a_bad_link_not_linked(client, agent):
    builders.notification(
        recipient=agent,
        subject=f"Pat {SCRIPT} replied",
        text=f'<img src=x onerror="alert(1)">{SCRIPT}',
        url="javascript:alert(1)",
    )
    client.force_login(agent)
    row = Notification.objects.get()

    for url in (MINE, f"{MINE}{row.pk}/change/"):
        page = client.get(url).content.decode()
        assert SCRIPT not in page and "<img src=x" not in page
        assert 'href="javascript:' not in page
        assert "Pat &lt;script&gt;alert(1)&lt;/script&gt; replied" in page


def test_my_notifications_costs_the_same_for_2_rows_and_8(client, agent, django_assert_num_queries):
    client.force_login(agent)
    for _ in range(2):
        builders.notification(recipient=agent)
    client.get(MINE)  # warm per-process caches
    with django_assert_num_queries(6) as small:
        client.get(MINE)
    for _ in range(6):
        builders.notification(recipient=agent)
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(client.get(MINE).context["cl"].result_list) == 8


def test_the_settings_page_costs_a_fixed_number_of_queries(
    client, agent, django_assert_num_queries
):
    client.force_login(agent)
    client.get(SETTINGS)
    # The session, the user, their preferences, their permissions (the sidebar).
    with django_assert_num_queries(5):
        client.get(SETTINGS)
    # Then the form's check of the roll-up's range, the row locked, saved, its history.
    with django_assert_num_queries(11):
        client.post(SETTINGS, form(sla_warning="rollup"))
