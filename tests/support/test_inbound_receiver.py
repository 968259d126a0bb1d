"""POST /webhooks/inbound-email/ and inbound_store: every response of the contract
(docs/contracts/email.md, Inbound 1), each message stored exactly once."""

import datetime as dt

import pytest
from django.db import OperationalError
from django.urls import reverse

from support import inbound
from support.email_message import MAX_MESSAGE_BYTES
from support.inbound import inbound_store
from support.models import InboundEmail
from tests.concurrency import at_once
from tests.support.mail_sender import URL, message, push, signature_headers
from tests.support.sender import OLD_SECRET, SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET, OLD_SECRET]


@pytest.fixture
def published(monkeypatch):
    """The ids handed to the worker (support.inbound_process) once intake commits."""
    ids: list[int] = []
    monkeypatch.setattr(inbound.INBOUND_PUBLISHER, "add", ids.append)
    return ids


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed():`` runs what waits for the transaction's commit at its end."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_the_url_is_named():
    assert reverse("inbound-email-webhook") == URL


def test_a_new_message_is_stored_as_received_then_a_202_and_handed_to_the_worker(
    client, published, committed
):
    raw = message()
    with committed():
        response = push(client, raw, webhook_id="msg_1")

    assert response.status_code == 202
    assert response.json() == {"id": "msg_1", "status": "accepted"}
    email = InboundEmail.objects.get()
    assert bytes(email.raw) == raw
    assert (
        email.source,
        email.delivery_id,
        email.message_id,
        email.from_address,
        email.from_name,
        email.subject,
        email.size,
        email.status,
        email.kind,
        email.attempts,
        email.error,
    ) == (
        "webhook",
        "msg_1",
        "<m1@mail.acme.com>",
        "pat@acme.com",
        "Pat Doe",
        "Export is broken",
        len(raw),
        "pending",
        "",
        0,
        "",
    )
    assert email.next_attempt_at is not None
    assert email.history.get().history_actor == "email:msg_1"
    assert published == [email.pk]


def test_a_retry_of_the_same_webhook_id_is_a_200_with_no_second_copy(client, published, committed):
    with committed():
        push(client, message(), webhook_id="msg_1")
        response = push(client, message(), webhook_id="msg_1")

    assert response.status_code == 200
    assert response.json() == {"id": "msg_1", "status": "duplicate"}
    assert InboundEmail.objects.count() == 1
    assert len(published) == 1


def test_the_same_message_id_under_another_webhook_id_is_a_200_with_no_second_copy(
    client, published, committed
):
    with committed():
        push(client, message(), webhook_id="msg_1")
        response = push(client, message(body="Sent again"), webhook_id="msg_2")

    assert response.status_code == 200
    assert response.json() == {"id": "msg_2", "status": "duplicate"}
    assert list(InboundEmail.objects.values_list("delivery_id", flat=True)) == ["msg_1"]
    assert len(published) == 1


def test_a_message_fetched_by_imap_first_is_a_200_when_pushed_too(client):
    stored = inbound_store(source="imap", delivery_id="imap:INBOX:7:41", raw=message())
    response = push(client, message(), webhook_id="msg_1")

    assert response.status_code == 200
    assert InboundEmail.objects.get().pk == stored.inbound.pk


def test_messages_without_a_message_id_are_told_apart_by_their_delivery(client):
    assert push(client, message(message_id=None), webhook_id="msg_1").status_code == 202
    assert push(client, message(message_id=None), webhook_id="msg_2").status_code == 202
    assert push(client, message(message_id=None), webhook_id="msg_2").status_code == 200
    assert InboundEmail.objects.filter(message_id="").count() == 2


def test_a_message_that_is_not_utf8_is_stored_byte_for_byte(client):
    raw = (
        b"From: =?iso-8859-1?q?Jos=E9?= <jose@acme.com>\r\nSubject: caf\xe9 cass\xe9\r\n"
        b"Message-ID: <latin@acme.com>\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"\r\nLe caf\xe9 ne marche plus.\r\n"
    )
    response = push(client, raw, webhook_id="msg_1")

    assert response.status_code == 202
    email = InboundEmail.objects.get()
    assert bytes(email.raw) == raw
    assert (email.from_name, email.from_address, email.subject) == (
        "José",
        "jose@acme.com",
        "caf\ufffd cass\ufffd",
    )


def test_a_message_signed_with_the_previous_secret_is_accepted(client):
    assert push(client, message(), secret=OLD_SECRET).status_code == 202


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h: h.pop("webhook-signature"), id="missing signature"),
        pytest.param(lambda h: h.pop("webhook-id"), id="missing id"),
        pytest.param(lambda h: h.pop("webhook-timestamp"), id="missing timestamp"),
        pytest.param(lambda h: h.update({"webhook-signature": "v1,@@"}), id="bad base64"),
        pytest.param(lambda h: h.update({"webhook-id": "msg_other"}), id="other id"),
        pytest.param(lambda h: h.update({"webhook-id": "m" * 193}), id="id too long"),
        pytest.param(lambda h: h.update({"webhook-id": "msg\n1"}), id="id with a newline"),
    ],
)
def test_a_bad_signature_is_a_401_and_nothing_is_stored(client, tamper):
    raw = message()
    headers = signature_headers(raw, webhook_id="msg_1")
    tamper(headers)
    response = client.post(URL, data=raw, content_type="message/rfc822", headers=headers)

    assert response.status_code == 401
    assert "error" in response.json()
    assert not InboundEmail.objects.exists()


def test_a_message_signed_with_an_unknown_secret_is_a_401(client):
    other = "whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQtMTIzNDU2Nzg="
    assert push(client, message(), secret=other).status_code == 401
    assert not InboundEmail.objects.exists()


def test_a_stale_signature_is_a_401(client):
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert push(client, message(), at=stale).status_code == 401


def test_a_body_changed_after_signing_is_a_401(client):
    raw = message()
    headers = signature_headers(raw)
    response = client.post(URL, data=raw + b"P.S.", content_type="message/rfc822", headers=headers)
    assert response.status_code == 401


def _of_size(size: int) -> bytes:
    head = message(body="")
    return head + b"x" * (size - len(head))


@pytest.mark.parametrize("size", [20 * 1024 * 1024, MAX_MESSAGE_BYTES])
def test_a_message_up_to_25_mib_is_accepted(client, size):
    # Far over DATA_UPLOAD_MAX_MEMORY_SIZE, which guards request.body, not the stream.
    response = push(client, _of_size(size), webhook_id="msg_big")

    assert response.status_code == 202
    email = InboundEmail.objects.defer("raw").get()
    assert email.size == size


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES + 1, 26 * 1024 * 1024])
def test_a_message_over_25_mib_is_a_413_and_nothing_is_stored(client, size):
    response = push(client, _of_size(size))

    assert response.status_code == 413
    assert response.json() == {"error": f"message larger than {MAX_MESSAGE_BYTES} bytes (25 MiB)"}
    assert not InboundEmail.objects.exists()


def test_a_declared_length_over_25_mib_is_a_413_before_the_body_is_read(client):
    raw = message()
    response = client.post(
        URL,
        data=raw,
        content_type="message/rfc822",
        headers=signature_headers(raw),
        CONTENT_LENGTH=str(MAX_MESSAGE_BYTES + 1),
    )
    assert response.status_code == 413
    assert not InboundEmail.objects.exists()


def test_a_body_longer_than_its_declared_length_is_read_only_that_far(client):
    raw = message()
    response = client.post(
        URL,
        data=raw,
        content_type="message/rfc822",
        headers=signature_headers(raw),
        CONTENT_LENGTH=str(len(raw) - 10),
    )
    assert response.status_code == 401  # what was read is not what was signed
    assert not InboundEmail.objects.exists()


@pytest.mark.parametrize(
    "raw, error",
    [
        (b"", "the body is empty, not an email"),
        (b"   \r\n", "the body is empty, not an email"),
        (b"Subject: no sender\r\n\r\nhello\r\n", "no From header with an email address"),
        (b"\x00\xff\xfe garbage", "no header section: not an RFC 5322 message"),
    ],
)
def test_a_body_that_is_not_an_email_is_a_422_stored_as_rejected(
    client, published, committed, raw, error
):
    with committed():
        response = push(client, raw, webhook_id="msg_1")

    assert response.status_code == 422
    assert response.json() == {"id": "msg_1", "status": "rejected", "error": error}
    email = InboundEmail.objects.get()
    assert (email.status, email.error, bytes(email.raw), email.next_attempt_at) == (
        "rejected",
        error,
        raw,
        None,
    )
    assert published == []  # nothing for the worker to do

    assert push(client, raw, webhook_id="msg_1").status_code == 200
    assert InboundEmail.objects.count() == 1


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", ""]
)
def test_a_body_that_is_not_message_rfc822_is_a_415(client, content_type):
    raw = message()
    response = client.post(URL, data=raw, content_type=content_type, headers=signature_headers(raw))
    assert response.status_code == 415
    assert response.json()["error"].startswith("Content-Type must be message/rfc822")
    assert not InboundEmail.objects.exists()


def test_the_content_type_may_carry_parameters_and_any_case(client):
    assert push(client, message(), content_type="Message/RFC822; charset=utf-8").status_code == 202


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(client, method):
    assert getattr(client, method)(URL).status_code == 405


def test_a_database_outage_is_a_503_to_retry(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("support.inbound.insert_with_history", unreachable)
    response = push(client, message())
    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_hostile_headers_are_stored_without_a_500(client):
    raw = message(
        sender="Mallory\x00 <mallory@evil.example>",
        subject="<script>alert(1)</script>\x00",
        message_id="<" + "x" * 2000 + "@evil.example>",
    )
    response = push(client, raw, webhook_id="msg_1")

    assert response.status_code == 202
    email = InboundEmail.objects.get()
    # A Message-ID no mail system would send is not one: the delivery tells it apart.
    assert (email.message_id, email.subject) == ("", "<script>alert(1)</script>")
    assert "\x00" not in email.from_name


def test_the_history_actor_fits_even_for_a_long_delivery_id():
    delivery_id = "imap:" + "x" * 250
    stored = inbound_store(source="imap", delivery_id=delivery_id, raw=message())
    assert stored.inbound.history.get().history_actor == ("email:" + delivery_id)[:200]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same", ["delivery_id", "message_id"])
def test_two_deliveries_of_one_message_at_once_store_it_once(same):
    def deliver(i):
        delivery_id = "msg_1" if same == "delivery_id" else f"msg_{i}"
        return inbound_store(source="webhook", delivery_id=delivery_id, raw=message())

    results = at_once(2, deliver)

    assert not any(isinstance(result, Exception) for result in results), results
    assert sorted(result.created for result in results) == [False, True]
    email = InboundEmail.objects.get()
    assert [result.inbound.pk for result in results] == [email.pk, email.pk]
    assert email.history.count() == 1


@pytest.mark.parametrize("delivery_id", ["", "x" * 256, "imap:INBOX\n7"])
def test_a_delivery_id_that_cannot_be_kept_is_refused_before_anything_is_stored(delivery_id):
    with pytest.raises(ValueError, match="a delivery id is 1 to 255 printable characters"):
        inbound_store(source="imap", delivery_id=delivery_id, raw=message())
    assert not InboundEmail.objects.exists()


def test_a_display_name_with_markup_left_unquoted_is_still_the_senders_message(client):
    # RFC 5322 wants the name quoted; mail servers deliver it anyway, so opsdesk takes the
    # address from its angle brackets instead of refusing the message.
    raw = message(sender="<script>alert(1)</script> <mallory@evil.example>")
    response = push(client, raw, webhook_id="msg_1")

    assert response.status_code == 202
    email = InboundEmail.objects.get()
    assert (email.from_name, email.from_address) == (
        "<script>alert(1)</script>",
        "mallory@evil.example",
    )
