"""Inbound email's staff pages: the list (its cost pinned), a message's record page shown as
text, Retry for a failed one, and the downloads of the original and the attachments, each
always a download and only for those who may see it."""

import pytest
from django.urls import reverse

from audit.context import acting_as
from support import inbound
from support.models import EmailAttachment, InboundEmail
from tests import builders
from tests.support.mail_sender import message

pytestmark = pytest.mark.django_db

LIST = reverse("admin:support_inboundemail_changelist")
SCRIPT = "<script>alert(1)</script>"


def page_of(email: InboundEmail) -> str:
    return reverse("admin:support_inboundemail_change", args=[email.pk])


def attachment(email: InboundEmail, **fields) -> EmailAttachment:
    values = {
        "filename": "report.pdf",
        "content_type": "application/pdf",
        "content": b"%PDF-1.4 fake",
        "size": 13,
        **fields,
    }
    with acting_as("test:fixture"):
        return EmailAttachment.objects.create(inbound=email, **values)


def original_of(email) -> str:
    return reverse("admin:support_inboundemail_original", args=[email.pk])


def download_of(item: EmailAttachment) -> str:
    return reverse("admin:support_inboundemail_attachment", args=[item.inbound_id, item.pk])


# --- The list ----------------------------------------------------------------------------


def test_the_list_shows_each_message_with_its_ticket(client, agent):
    ticket = builders.ticket(subject="Export broken")
    email = builders.inbound_email(
        sender="pat@acme.com",
        from_name="Pat Doe",
        subject="Re: Export broken",
        ticket=ticket,
        status=InboundEmail.Status.PROCESSED,
        kind=InboundEmail.Kind.MESSAGE,
    )
    client.force_login(agent)

    page = client.get(LIST).content.decode()

    assert "Pat Doe &lt;pat@acme.com&gt;" in page
    assert "Re: Export broken" in page
    assert reverse("admin:support_ticket_change", args=[ticket.pk]) in page
    assert f"#{ticket.pk} Export broken" in page
    assert page_of(email) in page


def test_the_list_filters_by_status_kind_and_source_and_searches(client, agent):
    failed = builders.inbound_email(subject="Broken", status=InboundEmail.Status.FAILED)
    bounce = builders.inbound_email(
        subject="Undeliverable", kind=InboundEmail.Kind.BOUNCE, source=InboundEmail.Source.IMAP
    )
    client.force_login(agent)

    def listed(query) -> list[int]:
        response = client.get(LIST, query)
        assert response.status_code == 200
        return [row.pk for row in response.context["cl"].result_list]

    assert listed({"status__exact": "failed"}) == [failed.pk]
    assert listed({"kind__exact": "bounce"}) == [bounce.pk]
    assert listed({"source__exact": "imap"}) == [bounce.pk]
    assert listed({"q": "undeliverable"}) == [bounce.pk]
    assert listed({"q": failed.message_id}) == [failed.pk]
    assert listed({"q": "pat@acme"}) == [bounce.pk, failed.pk]


def test_the_list_costs_the_same_for_one_message_and_for_twenty(
    client, agent, django_assert_num_queries
):
    def rows(count):
        for _ in range(count):
            builders.inbound_email(ticket=builders.ticket())

    client.force_login(agent)
    rows(1)
    client.get(LIST)  # warm the session and content types
    with django_assert_num_queries(6) as one:
        assert client.get(LIST).status_code == 200
    rows(19)
    with django_assert_num_queries(len(one.captured_queries)):
        response = client.get(LIST)
    assert len(response.context["cl"].result_list) == 20
    # The raw messages (up to 25 MiB each) are never read for the list.
    assert not any('"raw"' in q["sql"].split("FROM")[0] for q in one.captured_queries)


@pytest.mark.parametrize("persona", ["agent", "ops_lead", "superuser"])
def test_support_and_ops_leads_read_inbound_email(request, client, persona):
    builders.inbound_email()
    client.force_login(request.getfixturevalue(persona))
    assert client.get(LIST).status_code == 200


def test_account_managers_do_not_see_the_inbound_list(client, manager):
    client.force_login(manager)
    assert client.get(LIST).status_code == 403


# --- A message's page --------------------------------------------------------------------


def test_a_messages_page_shows_its_headers_status_ticket_text_and_attachments(client, agent):
    ticket = builders.ticket(subject="Export broken")
    email = builders.inbound_email(
        subject="Re: Export broken",
        body="It still spins.\n\nPat",
        ticket=ticket,
        status=InboundEmail.Status.PROCESSED,
        kind=InboundEmail.Kind.MESSAGE,
        matched_by=InboundEmail.MatchedBy.ADDRESS,
        warning="1 attachment over 10 MB was not kept",
    )
    kept = attachment(email)
    refused = attachment(
        email, filename="huge.iso", content=b"", size=40_000_000, refused="over 10 MB"
    )
    client.force_login(agent)

    response = client.get(page_of(email))

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False  # the page is the record
    page = response.content.decode()
    assert "1 attachment over 10 MB was not kept" in page
    assert reverse("admin:support_ticket_change", args=[ticket.pk]) in page
    assert "Reply-To address" in page  # how it was matched
    headers = dict(response.context["inbound_headers"])
    assert headers["From"] == "pat@acme.com"
    assert headers["Subject"] == "Re: Export broken"
    assert headers["Message-ID"] == email.message_id
    assert response.context["inbound_text"] == "It still spins.\n\nPat"
    assert original_of(email) in page
    assert download_of(kept) in page
    assert download_of(refused) not in page
    assert "huge.iso" in page and "over 10 MB" in page and "38.1\xa0MB" in page


def test_hostile_headers_and_an_html_message_are_shown_as_text(client, agent):
    raw = (
        f'From: "{SCRIPT}" <evil@example.com>\r\nSubject: {SCRIPT}\r\n'
        "Message-ID: <evil@example.com>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"<p>Hello <b>there</b></p>{SCRIPT}<img src=x onerror=alert(2)>\r\n"
    ).encode()
    email = inbound.inbound_store(source="webhook", delivery_id="msg_evil", raw=raw).inbound
    assert (email.status, email.from_name) == ("pending", SCRIPT)
    client.force_login(agent)

    page = client.get(page_of(email)).content.decode()

    assert SCRIPT not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the subject, as text
    assert "Hello there" in page  # the HTML turned into text


def test_a_rejected_message_shows_why_and_its_bytes_as_text(client, agent):
    email = inbound.inbound_store(
        source="webhook", delivery_id="msg_bad", raw=b"Subject: hi\r\n\r\n<b>no sender</b>"
    ).inbound
    client.force_login(agent)

    response = client.get(page_of(email))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Not a readable email: no From header with an email address" in page
    assert "&lt;b&gt;no sender&lt;/b&gt;" in page


def test_a_post_to_a_messages_page_is_refused_and_writes_nothing(client, superuser):
    email = builders.inbound_email(status=InboundEmail.Status.FAILED)
    client.force_login(superuser)

    response = client.post(page_of(email), {"status": "processed", "_save": "Save"})

    assert response.status_code == 403
    email.refresh_from_db()
    assert (email.status, email.history.count()) == ("failed", 1)


def test_nobody_adds_an_inbound_email_by_hand(client, superuser):
    client.force_login(superuser)
    assert client.get(reverse("admin:support_inboundemail_add")).status_code == 403


# --- Retry -------------------------------------------------------------------------------


def failed_email() -> InboundEmail:
    return builders.inbound_email(
        status=InboundEmail.Status.FAILED, attempts=6, error="RuntimeError: down"
    )


def retry_of(email) -> str:
    return reverse("admin:support_inboundemail_retry", args=[email.pk])


def test_a_failed_messages_page_offers_retry_to_support(client, agent, ops_lead):
    email = failed_email()
    client.force_login(agent)
    assert b'data-testid="inbound-retry"' in client.get(page_of(email)).content
    client.force_login(ops_lead)  # reads inbound email, does not retry it
    assert b'data-testid="inbound-retry"' not in client.get(page_of(email)).content


def test_retry_puts_a_failed_message_back_in_the_queue(
    client, agent, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(inbound.INBOUND_PUBLISHER, "add", published.append)
    email = failed_email()
    client.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(retry_of(email))

    assert response.status_code == 302
    assert response["Location"] == page_of(email)
    email.refresh_from_db()
    assert email.status == "pending"
    latest = email.history.latest()
    assert (latest.history_actor, latest.history_change_reason) == (
        "sam",
        "retry requested in the admin",
    )
    assert published == [email.pk]
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Queued again: a worker processes it within seconds."]


def test_retry_of_a_message_that_has_not_failed_changes_nothing(client, agent):
    email = builders.inbound_email(status=InboundEmail.Status.PROCESSED)
    client.force_login(agent)

    response = client.post(retry_of(email), follow=True)

    assert "Not retried: only failed messages retry, and this one is processed." in (
        response.content.decode()
    )
    assert email.history.count() == 1


@pytest.mark.parametrize("persona", ["ops_lead", "manager"])
def test_retry_by_someone_who_may_not_is_refused(request, client, persona):
    email = failed_email()
    client.force_login(request.getfixturevalue(persona))

    assert client.post(retry_of(email)).status_code == 403
    email.refresh_from_db()
    assert (email.status, email.history.count()) == ("failed", 1)


def test_retry_is_post_only(client, agent):
    client.force_login(agent)
    assert client.get(retry_of(failed_email())).status_code == 405


def test_the_retry_action_retries_only_the_failed_ones(client, agent):
    failed, processed = failed_email(), builders.inbound_email(status="processed")
    client.force_login(agent)

    client.post(LIST, {"action": "retry_failed", "_selected_action": [failed.pk, processed.pk]})

    failed.refresh_from_db()
    processed.refresh_from_db()
    assert (failed.status, processed.status) == ("pending", "processed")


# --- Downloads ---------------------------------------------------------------------------


def test_the_original_is_a_download_of_the_exact_bytes(client, agent):
    raw = message() + b"\xff\xfe not UTF-8\r\n"
    email = inbound.inbound_store(source="webhook", delivery_id="msg_1", raw=raw).inbound
    client.force_login(agent)

    response = client.get(original_of(email))

    assert response.status_code == 200
    assert response.content == raw
    assert response["Content-Type"] == "message/rfc822"
    assert response["Content-Disposition"] == f'attachment; filename="message-{email.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "filename, disposition",
    [
        ("report.pdf", 'attachment; filename="report.pdf"'),
        ('we"ird\\name.html', 'attachment; filename="we\\"ird\\\\name.html"'),
        ("bad\r\nX-Evil: 1.txt", "attachment; filename*=utf-8''bad%0D%0AX-Evil%3A%201.txt"),
        ("Überweisung.pdf", "attachment; filename*=utf-8''%C3%9Cberweisung.pdf"),
    ],
)
def test_an_attachment_is_always_a_download_with_a_safe_name(client, agent, filename, disposition):
    item = attachment(
        builders.inbound_email(), filename=filename, content_type="text/html", content=b"<b>hi</b>"
    )
    client.force_login(agent)

    response = client.get(download_of(item))

    assert response.status_code == 200
    assert response.content == b"<b>hi</b>"
    assert response["Content-Type"] == "application/octet-stream"  # never the sender's type
    assert response["Content-Disposition"] == disposition
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_attachment_not_kept_or_of_another_message_or_absent_is_a_404(client, agent):
    email, other = builders.inbound_email(), builders.inbound_email()
    refused = attachment(email, content=b"", refused="over 10 MB")
    kept = attachment(other)
    client.force_login(agent)

    assert client.get(download_of(refused)).status_code == 404
    wrong_message = reverse("admin:support_inboundemail_attachment", args=[email.pk, kept.pk])
    assert client.get(wrong_message).status_code == 404
    for args in ([email.pk, 999_999], [email.pk, "abc"], ["abc", kept.pk], [email.pk, "1e400"]):
        url = reverse("admin:support_inboundemail_attachment", args=args)
        assert client.get(url).status_code == 404, args
    assert client.get(reverse("admin:support_inboundemail_original", args=["abc"])).status_code == (
        404
    )


@pytest.mark.parametrize("persona", ["agent", "manager", "ops_lead", "superuser"])
def test_staff_who_may_view_tickets_download(request, client, persona):
    item = attachment(builders.inbound_email())
    client.force_login(request.getfixturevalue(persona))

    assert client.get(download_of(item)).status_code == 200
    assert client.get(original_of(item.inbound)).status_code == 200


def test_an_outsider_may_not_download(client, outsider):
    item = attachment(builders.inbound_email())
    client.force_login(outsider)

    assert client.get(download_of(item)).status_code == 403
    assert client.get(original_of(item.inbound)).status_code == 403


def test_staff_without_ticket_or_inbound_permissions_may_not_download(client):
    from tests.personas import staff_user

    item = attachment(builders.inbound_email())
    client.force_login(staff_user("nobody"))

    assert client.get(download_of(item)).status_code == 403


def test_someone_signed_out_is_sent_to_sign_in(client):
    item = attachment(builders.inbound_email())
    response = client.get(download_of(item))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_downloads_are_get_only(client, agent):
    item = attachment(builders.inbound_email())
    client.force_login(agent)
    assert client.post(download_of(item)).status_code == 405
    assert client.post(original_of(item.inbound)).status_code == 405
