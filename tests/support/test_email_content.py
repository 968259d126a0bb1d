"""Reading what an inbound email says (docs/contracts/email.md, Effects): the new text a
person typed in each client's shape (quotes, Outlook blocks, signatures, HTML only), what
made it an auto-reply or a bounce, and its attachments, from messages nobody trusts."""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest

from support.email_content import email_content, filename_safe, new_text
from support.email_message import message_parse
from support.models import InboundEmail
from tests.support.raw_emails import plain_email, raw_email


def content_of(name: str, **values):
    return email_content(message_parse(raw_email(name, ticket=7, **values)))


# --- the new text, client by client ---------------------------------------------------


def test_a_gmail_reply_is_its_first_line_without_the_signature_or_the_quote():
    content = content_of("gmail_reply", in_reply_to="<r1@acme.example>")

    assert content.kind == InboundEmail.Kind.MESSAGE
    assert content.text == "Thanks, that worked!"
    # The whole text part is kept as it came (the plain alternative, not the HTML one).
    assert content.full_text.startswith("Thanks, that worked!\n\n-- \nPat Jones\n")
    assert "> We raised the export limit on your workspace." in content.full_text
    assert "<div" not in content.full_text


def test_an_outlook_desktop_reply_stops_at_its_from_sent_block_and_sign_off():
    content = content_of("outlook_desktop_reply")

    assert content.text == (
        "Hi Sam,\n\nThe export ran through this morning, 48,000 rows in under a minute.\n"
        "Thank you, we can close this."
    )


def test_an_html_only_outlook_web_reply_is_turned_into_text_without_its_quote():
    content = content_of("outlook_web_html_only")

    # Latin-1 decoded; "Get Outlook for iOS" and the quoted "From:/Sent:" block gone.
    assert content.text == "The VAT number is DE 123 456 789, not the old one. Grüße aus Köln!"
    assert "Which VAT number should the invoice show?" in content.full_text
    for markup in ("<div", "<b>", "&nbsp;", "P {margin-top"):
        assert markup not in content.full_text


def test_an_iphone_reply_drops_sent_from_my_iphone_and_the_quoted_on_wrote_block():
    content = content_of("apple_mail_reply")

    assert content.text == (
        "Yes, it\u2019s the three people who left in February.\nThey still show as active."
    )


def test_a_german_outlook_reply_stops_at_mit_freundlichen_gruessen():
    content = content_of("outlook_german_reply")

    assert content.text == "Hallo Sam,\n\ndanke, das Anmelden klappt wieder."


def test_a_french_gmail_reply_stops_at_cordialement_and_le_a_ecrit():
    content = content_of("gmail_french_reply")

    assert content.text == "Bonjour,\n\nOui, la facture OPS-1042 apparaît deux fois."


def test_a_thunderbird_reply_has_its_flowed_lines_joined_and_its_signature_removed():
    content = content_of("thunderbird_reply")

    assert content.text == (
        "Hi Sam,\n\n"
        "the three seats are still taken after we removed the people in the user list, even "
        "after waiting a day. Could you free them by hand until it is fixed?\n\n"
        "Lena"
    )
    assert "> Which seats are still taken? A list of the people would help us look into it." in (
        content.full_text
    )


def test_a_new_request_keeps_its_hyphen_list_and_loses_its_sign_off():
    content = content_of("new_request", sender="morgan.lee@globex.com")

    assert content.text == (
        "Hello,\n\n"
        'Since Monday the CSV export stops after about 30 seconds with "Gateway timeout".\n'
        "Steps:\n"
        "- open Reports\n"
        '- choose "All users"\n'
        "- press Export\n\n"
        "The screenshot is attached."
    )


def test_thanks_in_the_middle_of_a_message_is_not_taken_for_a_sign_off():
    text = "Hi Sam,\n\nThanks, that worked!\nThe export now takes a minute.\n\nBest,\nPat\n"

    assert new_text(text) == "Hi Sam,\n\nThanks, that worked!\nThe export now takes a minute."


def test_a_thanks_line_followed_by_more_sentences_is_kept():
    text = "Hello,\n\nThanks!\n\nI tried again and it fails with error 42 every time.\n"

    assert new_text(text) == text.strip()


def test_a_sign_off_with_the_name_on_its_line_ends_the_text():
    assert new_text("It works now.\nBest regards, Jane Smith\nInitech") == "It works now."


def test_the_signature_separator_ends_the_text():
    assert new_text("Done, thank you.\n-- \nPat\nGlobex") == "Done, thank you."


def test_a_bottom_posted_reply_keeps_only_the_lines_below_the_quote():
    text = (
        "On Tue, 3 Mar 2026 at 10:12, Acme Support <support@acme.example> wrote:\n"
        "> Could you try again?\n"
        ">\n"
        "\n"
        "Tried again: same error.\n"
    )

    assert new_text(text) == "Tried again: same error."


def test_a_message_that_is_only_a_quote_keeps_all_of_it():
    text = "> Could you try again?\n> Sam"

    assert new_text(text) == text


def test_a_forward_with_nothing_typed_keeps_the_forwarded_text():
    text = (
        "---------- Forwarded message ---------\n"
        "From: Lee <lee@globex.com>\n"
        "Date: Mon, 2 Mar 2026 at 09:00\n"
        "Subject: Export\n"
        "To: Pat <pat@globex.com>\n\n"
        "The export fails."
    )

    assert new_text(text) == text


def test_indentation_is_taken_away():
    assert new_text("   Hello,\n\n      it works.") == "Hello,\n\nit works."


def test_a_long_line_starting_like_a_quote_header_is_read_in_well_under_a_second_each():
    # mail-parser-reply's "On ... wrote:" pattern is quadratic in a line's length.
    text = "On " + "x " * 50_000 + "\nOn " + "y " * 50_000

    started = time.monotonic()
    result = new_text(text)

    assert time.monotonic() - started < 2
    assert result.startswith("On x x x")


def test_html_loses_its_scripts_and_styles_and_keeps_its_words():
    content = content_of("html_script")

    assert content.text == "The dashboard is blank since the update & nothing loads.\n\nClick here"
    for hidden in ("document.cookie", "alert", "color: red", "ignored", "<"):
        assert hidden not in content.full_text


def test_an_unknown_charset_is_read_as_utf_8_with_replacement_characters():
    content = content_of("bad_charset")

    assert content.text == "The invoice for Troms\ufffd is wrong — \ufffd\ufffd totals differ."


def test_broken_base64_and_nul_bytes_never_crash_the_reader():
    raw = (
        b"From: a@globex.com\r\nTo: support@acme.example\r\nSubject: x\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"SGVsbG8AIHdvcmxk!!!=\r\n"
    )

    content = email_content(message_parse(raw))

    assert content.text == "Hello\ufffd world"


def test_utf_8_declared_as_ascii_is_read_as_utf_8():
    raw = (
        "From: a@globex.com\r\nSubject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, Zoë\r\n"
    ).encode()

    assert email_content(message_parse(raw)).text == "Grüße, Zoë"


def test_a_multipart_without_its_boundary_is_read_as_text():
    raw = (
        b"From: a@globex.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nThe boundary got lost.\r\n"
    )

    content = email_content(message_parse(raw))

    assert (content.text, content.attachments) == ("The boundary got lost.", [])


def test_the_plain_alternative_is_preferred_but_a_blank_one_gives_way_to_html():
    message = EmailMessage()
    message["From"] = "a@globex.com"
    message.set_content("   \n")
    message.add_alternative("<p>Only the HTML has words.</p>", subtype="html")

    assert email_content(message).text == "Only the HTML has words."


# --- auto-replies and bounces ---------------------------------------------------------


@pytest.mark.parametrize(
    ("mark", "said"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted: Auto-Replied; owner-email=pat@globex.com", None),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: junk", "Precedence: junk"),
        ("Precedence: List", "Precedence: list"),
        ("X-Autoreply: yes", "X-Autoreply: yes"),
        ("X-Autorespond: Out of office", "X-Autorespond: Out of office"),
    ],
)
def test_an_auto_reply_is_known_by_each_of_its_marks(mark, said):
    content = content_of("out_of_office", mark=mark)

    assert content.kind == InboundEmail.Kind.AUTO_REPLY
    assert content.mark == (said or mark)


@pytest.mark.parametrize(
    "mark",
    ["Auto-Submitted: no", "Precedence: first-class", "X-Auto-Response-Suppress: All", ""],
)
def test_a_message_a_person_wrote_is_no_auto_reply(mark):
    content = content_of("out_of_office", mark=mark)

    assert content.kind == InboundEmail.Kind.MESSAGE
    assert content.mark == ""


def test_a_delivery_report_is_a_bounce_with_its_notification_as_text():
    content = content_of("bounce", in_reply_to="<r1@acme.example>")

    assert content.kind == InboundEmail.Kind.BOUNCE
    assert content.mark == "multipart/report"
    assert content.text.startswith("This is the mail system at host mx.globex.com.")
    assert content.text.endswith("550 5.1.1\nUser unknown")
    assert content.attachments == []


def test_a_delivery_status_part_inside_a_mixed_message_is_a_bounce():
    message = plain_email("Your message could not be delivered.", sender="mta@globex.com")
    message.make_mixed()
    status = EmailMessage()
    status.set_content(b"Action: failed\n", maintype="message", subtype="delivery-status")
    message.attach(status)

    content = email_content(message)

    assert (content.kind, content.mark) == (
        InboundEmail.Kind.BOUNCE,
        "a message/delivery-status part",
    )


def test_a_plain_text_bounce_from_the_mailer_daemon_is_a_bounce():
    message = plain_email("Undeliverable.", sender="MAILER-DAEMON@mx.globex.com")

    content = email_content(message)

    assert (content.kind, content.mark) == (InboundEmail.Kind.BOUNCE, "sent by mailer-daemon")


def test_a_forwarded_bounce_is_a_message_of_the_person_who_forwarded_it():
    bounce = message_parse(raw_email("bounce", ticket=7))
    message = plain_email("Our mail to you bounces, see the attached report.")
    message.add_attachment(bounce)

    content = email_content(message)

    assert (content.kind, content.mark) == (InboundEmail.Kind.MESSAGE, "")
    assert content.text == "Our mail to you bounces, see the attached report."
    assert [a.content_type for a in content.attachments] == ["message/rfc822"]


# --- attachments ----------------------------------------------------------------------


def test_an_inline_image_and_an_attached_pdf_are_attachments_the_text_is_not():
    content = content_of("new_request", sender="morgan.lee@globex.com")

    assert [(a.filename, a.content_type, a.size) for a in content.attachments] == [
        ("export error.png", "image/png", 70),
        ("export-log.pdf", "application/pdf", 78),
    ]
    png, pdf = content.attachments
    assert png.payload.startswith(b"\x89PNG\r\n")
    assert pdf.payload.startswith(b"%PDF-1.4")


def test_a_related_image_without_a_name_and_a_forwarded_message_get_names():
    message = plain_email("See the picture.")
    message.add_alternative('<p>See the picture.</p><img src="cid:logo">', subtype="html")
    html = message.get_payload()[1]
    html.add_related(b"GIF89a...", maintype="image", subtype="gif", cid="<logo>")
    message.make_mixed()
    forwarded = plain_email("The original.", subject="Original")
    message.add_attachment(forwarded)

    content = email_content(message)

    # The plain alternative is the text; the HTML one's image is a file that came all the
    # same (a screenshot pasted into Outlook is one).
    assert content.text == "See the picture."
    assert [(a.filename, a.content_type) for a in content.attachments] == [
        ("attachment-1.gif", "image/gif"),
        ("attachment-2.eml", "message/rfc822"),
    ]
    assert b"Subject: Original" in content.attachments[1].payload


def test_a_text_file_with_a_name_is_an_attachment_not_part_of_the_text():
    message = plain_email("The log is attached.")
    message.add_attachment("line 1\nline 2\n", filename="server.log", disposition="inline")

    content = email_content(message)

    assert content.text == "The log is attached."
    assert [(a.filename, a.content_type, a.payload) for a in content.attachments] == [
        ("server.log", "text/plain", b"line 1\nline 2\n")
    ]


def test_a_signature_of_the_message_is_no_attachment():
    message = plain_email("Signed.")
    message.add_attachment(
        b"0\x82", maintype="application", subtype="pkcs7-signature", filename="smime.p7s"
    )

    assert email_content(message).attachments == []


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\pat\\Desktop\\invoice.pdf", "invoice.pdf"),
        ("evil\x00.exe\r\n", "evil.exe"),
        ("invoice\u202eexe.pdf", "invoiceexe.pdf"),
        ("  spaced   out .txt  ", "spaced out .txt"),
        ("..", "attachment-3.png"),
        ("", "attachment-3.png"),
        ("x" * 300 + ".xlsx", "x" * 250 + ".xlsx"),
        ("y" * 300, "y" * 255),
    ],
)
def test_a_file_name_is_made_safe(name, safe):
    assert filename_safe(name, number=3, content_type="image/png") == safe
