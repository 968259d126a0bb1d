"""The SLA policies' pages (support.admin_sla): ops leads edit the service levels as data,
every role reads them; a calendar, zone, plan or target set that cannot be used is
refused with a message saying what is wrong, and nothing is saved."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from support import sla
from support.models import SlaHoliday, SlaPolicy, SlaTarget
from tests.pages import messages_of

pytestmark = pytest.mark.django_db

LIST = "/admin/support/slapolicy/"
MINUTE = dt.timedelta(minutes=1)
ADD = "/admin/support/slapolicy/add/"


def policy_form(*, targets=None, holidays=(), **fields) -> dict:
    data = {
        "name": "Premium support",
        "plans": [],
        "time_zone": "Europe/Berlin",
        "business_hours": json.dumps({"mon": [["08:00", "20:00"]], "sat": [["10:00", "14:00"]]}),
        "targets-TOTAL_FORMS": "4",
        "targets-INITIAL_FORMS": "0",
        "targets-MIN_NUM_FORMS": "0",
        "targets-MAX_NUM_FORMS": "4",
        "holidays-TOTAL_FORMS": str(len(holidays)),
        "holidays-INITIAL_FORMS": "0",
        "holidays-MIN_NUM_FORMS": "0",
        "holidays-MAX_NUM_FORMS": "1000",
        **fields,
    }
    rows = targets if targets is not None else ["urgent", "high", "normal", "low"]
    data["targets-TOTAL_FORMS"] = str(len(rows))
    for i, priority in enumerate(rows):
        data.update(
            {
                f"targets-{i}-priority": priority,
                f"targets-{i}-first_response_minutes": "30",
                f"targets-{i}-next_response_minutes": "60",
                f"targets-{i}-resolution_minutes": "600",
                f"targets-{i}-business_hours": "on" if priority != "urgent" else "",
            }
        )
    for i, (date, name) in enumerate(holidays):
        data.update({f"holidays-{i}-date": date, f"holidays-{i}-name": name})
    return data


def errors_of(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_an_ops_lead_adds_a_policy_with_its_targets_and_holidays(client, ops_lead, sla_policies):
    client.force_login(ops_lead)
    response = client.post(
        ADD, policy_form(plans=["enterprise"], holidays=[("2026-12-25", "Christmas Day")])
    )
    assert response.status_code == 200  # Enterprise already follows its own policy
    assert "Enterprise already follows “Enterprise”: a plan has one policy." in errors_of(response)

    response = client.post(ADD, policy_form(holidays=[("2026-12-25", "Christmas Day")]))

    assert response.status_code == 302, errors_of(response)[:3000]
    policy = SlaPolicy.objects.get(name="Premium support")
    assert (policy.plans, policy.is_default, policy.time_zone) == ([], False, "Europe/Berlin")
    assert sorted(
        policy.targets.values_list("priority", "first_response_minutes", "business_hours")
    ) == [
        ("high", 30, True),
        ("low", 30, True),
        ("normal", 30, True),
        ("urgent", 30, False),
    ]
    assert [(str(h.date), h.name) for h in SlaHoliday.objects.filter(policy=policy)] == [
        ("2026-12-25", "Christmas Day")
    ]
    assert policy.history.get().history_actor == "olga"


def test_a_new_policy_starts_from_the_default_targets_and_hours(client, ops_lead):
    client.force_login(ops_lead)
    page = client.get(ADD).content.decode()
    assert 'name="targets-TOTAL_FORMS" value="4"' in page
    assert 'name="targets-3-first_response_minutes" value="1440"' in page  # low: 24 h
    assert 'name="targets-0-next_response_minutes" value="30"' in page  # urgent: half of 1 h
    assert "&quot;mon&quot;: [[&quot;09:00&quot;, &quot;17:00&quot;]]" in page


def test_the_default_targets_saved_as_offered_are_the_policys(client, ops_lead):
    client.force_login(ops_lead)
    data = policy_form(business_hours=json.dumps(sla.DEFAULT_HOURS))
    for i, (priority, target) in enumerate(sla.default_targets().items()):
        data.update(
            {
                f"targets-{i}-priority": priority,
                f"targets-{i}-first_response_minutes": str(target.first_response // MINUTE),
                f"targets-{i}-next_response_minutes": str(target.next_response // MINUTE),
                f"targets-{i}-resolution_minutes": str(target.resolution // MINUTE),
                f"targets-{i}-business_hours": "on",
            }
        )

    response = client.post(ADD, data)

    assert response.status_code == 302, errors_of(response)[:3000]
    policy = SlaPolicy.objects.get(name="Premium support")
    assert sorted(policy.targets.values_list("priority", "first_response_minutes")) == [
        ("high", 240),
        ("low", 1440),
        ("normal", 480),
        ("urgent", 60),
    ]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"mon": [["17:00", "09:00"]]}, "Monday: 17:00-09:00 ends before it starts."),
        ({"mon": [["9", "17:00"]]}, "Monday: 9-17:00 is not two times of day"),
        (
            {"tue": [["09:00", "13:00"], ["12:00", "18:00"]]},
            "Tuesday: 09:00-13:00 and 12:00-18:00 overlap.",
        ),
        ({"someday": [["09:00", "17:00"]]}, "Unknown day someday: use mon, tue, wed"),
        ({}, "Give at least one day business hours."),
        (["09:00", "17:00"], "Business hours must be a mapping of days to hours"),
    ],
)
def test_a_bad_calendar_is_refused_with_what_is_wrong(client, ops_lead, hours, message):
    client.force_login(ops_lead)
    response = client.post(ADD, policy_form(business_hours=json.dumps(hours)))
    assert message in errors_of(response)
    assert not SlaPolicy.objects.filter(name="Premium support").exists()
    assert not SlaTarget.objects.filter(policy__name="Premium support").exists()


def test_text_that_is_not_json_is_refused(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post(ADD, policy_form(business_hours="mon 9-5"))
    assert "Write the business hours as JSON: mon 9-5 is not." in errors_of(response)
    assert not SlaPolicy.objects.filter(name="Premium support").exists()


def test_an_unknown_time_zone_is_refused(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post(ADD, policy_form(time_zone="Europe/Atlantis"))
    assert (
        "“Europe/Atlantis” is not a time zone; use a name like Europe/Berlin or UTC."
        in errors_of(response)
    )


def test_a_policy_needs_a_target_for_every_priority(client, ops_lead):
    client.force_login(ops_lead)
    response = client.post(ADD, policy_form(targets=["urgent", "high"]))
    assert "Give a target for each priority; missing: Normal, Low." in errors_of(response)
    assert not SlaPolicy.objects.filter(name="Premium support").exists()


def test_one_policy_is_the_default(client, ops_lead, sla_policies):
    client.force_login(ops_lead)
    response = client.post(ADD, policy_form(is_default="on"))
    assert "Another policy is the default; one policy is." in errors_of(response)


def test_an_ops_lead_changes_a_target(client, ops_lead, sla_policies):
    growth = sla_policies["Growth"]
    client.force_login(ops_lead)
    page = client.get(f"{LIST}{growth.pk}/change/")
    assert page.status_code == 200
    targets = list(growth.targets.order_by("pk"))
    data = policy_form(name="Growth", plans=["growth"], time_zone="UTC")
    data.update({"targets-INITIAL_FORMS": "4"})
    for i, target in enumerate(targets):
        data[f"targets-{i}-id"] = str(target.pk)
        data[f"targets-{i}-policy"] = str(growth.pk)
        data[f"targets-{i}-priority"] = target.priority
    response = client.post(f"{LIST}{growth.pk}/change/", data)
    assert response.status_code == 302, errors_of(response)[:3000]
    assert messages_of(response)[0].startswith("The SLA policy “")
    assert growth.targets.get(priority="urgent").first_response_minutes == 30


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_every_role_reads_the_policies_and_only_ops_leads_change_them(
    client, request, persona, sla_policies
):
    client.force_login(request.getfixturevalue(persona))
    listing = client.get(LIST)
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "Mon-Fri 09:00-17:00" in text and "everyone else" in text
    page = client.get(f"{LIST}{sla_policies['Starter'].pk}/change/")
    assert page.status_code == 200 and b'name="business_hours"' not in page.content
    assert client.post(ADD, policy_form()).status_code == 403
    assert not SlaPolicy.objects.filter(name="Premium support").exists()


def test_policies_are_in_supports_sidebar(client, agent, sla_policies):
    client.force_login(agent)
    support = client.get(LIST).context["sidebar_navigation"][0]
    assert ("SLA policies", True) in [(i["title"], i["active"]) for i in support["items"]]
