"""What an inbound email says (docs/contracts/email.md, Effects): whether a person wrote it
or a machine (an auto-reply, a bounce), the new text its writer typed, and the files that
came with it.

The text is for the ticket's conversation, where it is shown as plain text only: HTML is
turned into text here and never kept as markup. Nothing in a message from outside may
crash this module: an unknown charset, broken base64 or a malformed header is read with
replacement characters, never raised.
"""

from __future__ import annotations

import bisect
import codecs
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import parseaddr
from typing import NamedTuple

from inscriptis import get_text
from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE
from mailparser_reply.parser import EmailMessage as ReplyMessage

from support.models import InboundEmail

# The clients' languages whose quote headers ("On ... wrote:", "Am ... schrieb", Outlook's
# "From:/Sent:" block in each language) and sign-offs are recognised: every language
# mail-parser-reply knows except Polish, whose Outlook-block pattern takes a single line
# such as "Data: ..." or "Do: ..." for a quote header and would cut a message there.
LANGUAGES = tuple(sorted(set(MAIL_LANGUAGES) - {"pl", "david"}))
# Sign-off phrases mail-parser-reply lacks (it has "Thanks," but not "Thanks", ...). A
# sign-off only counts alone on its line (perhaps with a name after it) and followed by a
# name-like line, so "Thanks, that worked!" in the middle of a message is kept.
_EXTRA_SIGNOFFS = (
    "Thanks",
    "Thank you",
    "Many thanks",
    "Cheers",
    "Regards",
    "Best wishes",
    "Warm regards",
    "Sincerely",
    "Viele Grüße",
    "Merci",
)
# The quote patterns of mail-parser-reply take time growing with the square of a line's
# length ("On " and 30,000 characters take half a minute), so they are run over the first
# _PARSED_MAX_CHARS characters with every line cut to _PARSED_LINE_MAX (a quote header
# is far shorter), and the lines found are then given back whole: at most about a second
# for the worst message. What a person types on top of a reply is well within the first
# _PARSED_MAX_CHARS; the stored original keeps the rest.
_PARSED_MAX_CHARS = 100_000
_PARSED_LINE_MAX = 300

# Parts that are a report's machinery or a signature of the message, not a file someone
# attached.
_NOT_ATTACHMENTS = frozenset(
    {
        "message/delivery-status",
        "message/disposition-notification",
        "message/feedback-report",
        "text/rfc822-headers",
        "application/pgp-signature",
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    }
)
_REPORT_PARTS = frozenset({"message/delivery-status", "message/disposition-notification"})
# Local parts that only a mail server sends from: their messages are bounces even when a
# server does not send them as multipart/report.
_BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
FILENAME_MAX = 255
CONTENT_TYPE_MAX = 255


class Attachment(NamedTuple):
    filename: str
    content_type: str
    payload: bytes
    size: int


@dataclass(frozen=True)
class Content:
    """``kind`` is an ``InboundEmail.Kind``; ``mark`` names what made a message an
    auto-reply or a bounce (e.g. "Auto-Submitted: auto-replied"), "" for a message."""

    kind: str
    text: str
    full_text: str
    attachments: list[Attachment] = field(default_factory=list)
    mark: str = ""


def header_text(message: Message, name: str) -> str:
    """A header's value as text; "" when absent or unreadable (malformed encoded words)."""
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        return ""
    return str(value).strip() if value is not None else ""


def printable(text: str) -> str:
    """``text`` without control characters (a header may carry a NUL, which PostgreSQL
    can't store)."""
    return "".join(char for char in text if char.isprintable())


def email_content(message: EmailMessage) -> Content:
    """What ``message`` says: its kind, the new text, the whole text, its attachments."""
    kind, mark = _kind(message)
    texts: list[tuple[str, str]] = []
    attachments: list[Attachment] = []
    _collect(message, texts, attachments)
    full_text = _clean("\n\n".join(_as_text(subtype, body) for subtype, body in texts)).strip()
    attachments = [
        a._replace(filename=filename_safe(a.filename, number=n, content_type=a.content_type))
        for n, a in enumerate(attachments, start=1)
    ]
    return Content(
        kind=kind,
        text=new_text(full_text),
        full_text=full_text,
        attachments=attachments,
        mark=mark,
    )


# --- kind -----------------------------------------------------------------------------


def _kind(message: EmailMessage) -> tuple[str, str]:
    content_type = message.get_content_type()
    if content_type == "multipart/report":
        return InboundEmail.Kind.BOUNCE, "multipart/report"
    for part in _parts(message):
        if part.get_content_type() in _REPORT_PARTS:
            return InboundEmail.Kind.BOUNCE, f"a {part.get_content_type()} part"
    local = parseaddr(header_text(message, "From"))[1].rpartition("@")[0].lower()
    if local in _BOUNCE_SENDERS:
        return InboundEmail.Kind.BOUNCE, f"sent by {local}"
    # RFC 3834: any Auto-Submitted value but "no" (parameters may follow a ";").
    auto_submitted = header_text(message, "Auto-Submitted")
    if auto_submitted and auto_submitted.split(";")[0].strip().lower() != "no":
        return InboundEmail.Kind.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}"
    precedence = header_text(message, "Precedence").lower()
    if precedence in ("bulk", "junk", "list"):
        return InboundEmail.Kind.AUTO_REPLY, f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if name in message:
            return InboundEmail.Kind.AUTO_REPLY, f"{name}: {header_text(message, name)}"
    return InboundEmail.Kind.MESSAGE, ""


# --- parts ----------------------------------------------------------------------------


def _parts(part: Message):
    """``part`` and the parts inside it, not those of a message attached to it (a
    forwarded bounce does not make its forward a bounce)."""
    yield part
    if part.is_multipart() and part.get_content_maintype() != "message":
        for child in part.get_payload():
            if isinstance(child, Message):
                yield from _parts(child)


def _filename(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except (ValueError, IndexError, TypeError, LookupError):
        return ""


def _disposition(part: Message) -> str:
    try:
        return part.get_content_disposition() or ""
    except (ValueError, IndexError, TypeError):
        return ""


def _is_body(part: Message) -> bool:
    """A text part a person wrote in (not a file that happens to be text), or a
    multipart without its boundary, which the parser leaves as one block of text."""
    return (
        part.get_content_type() in ("text/plain", "text/html")
        or part.get_content_maintype() == "multipart"
    ) and (_disposition(part) != "attachment" and not _filename(part))


def _collect(part: Message, texts: list[tuple[str, str]], attachments: list[Attachment]) -> None:
    """Walk the MIME tree: body texts into ``texts`` ((subtype, decoded text), in order,
    one alternative of each ``multipart/alternative``), files into ``attachments``."""
    content_type = part.get_content_type()
    if content_type == "message/rfc822" or not part.is_multipart():
        if _is_body(part):
            text = _decoded(part)
            if _param(part, "format") == "flowed":
                text = _unflowed(text, delsp=_param(part, "delsp") == "yes")
            texts.append(("html" if part.get_content_subtype() == "html" else "plain", text))
        elif content_type not in _NOT_ATTACHMENTS:
            attachments.append(_attachment(part))
        return
    children = [child for child in part.get_payload() if isinstance(child, Message)]
    if content_type == "multipart/alternative":
        _collect_alternative(children, texts, attachments)
    elif content_type == "multipart/report" and children:
        # The human-readable explanation comes first; the rest is the report's machinery
        # and the returned message, which the stored original keeps.
        _collect(children[0], texts, attachments)
    else:
        for child in children:
            _collect(child, texts, attachments)


def _collect_alternative(
    children: list[Message], texts: list[tuple[str, str]], attachments: list[Attachment]
) -> None:
    """One rendering of the same text: the plain one if it has words, else the richest
    (the last, RFC 2046 5.1.4)."""
    renderings = []
    for child in children:
        found_texts: list[tuple[str, str]] = []
        found_files: list[Attachment] = []
        _collect(child, found_texts, found_files)
        renderings.append((found_texts, found_files))
    chosen = next(
        (
            r
            for r in renderings
            if r[0] and all(s == "plain" for s, _ in r[0]) and any(t.strip() for _, t in r[0])
        ),
        None,
    )
    if chosen is None:
        chosen = next((r for r in reversed(renderings) if r[0]), ([], []))
    texts.extend(chosen[0])
    # Every rendering's files: a screenshot pasted into an Outlook message lives in the
    # HTML rendering (multipart/related) even when the plain one is the text.
    for _, files in renderings:
        attachments.extend(files)


def _param(part: Message, name: str) -> str:
    try:
        return str(part.get_param(name, "")).strip().lower()
    except (ValueError, IndexError, TypeError):
        return ""


def _unflowed(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed text (Thunderbird's default) as its paragraphs: a line
    ending in a space goes on in the next line of the same quote depth; the space-stuffing
    of a line is taken away."""
    paragraphs: list[tuple[int, str]] = []
    open_paragraph = False
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        body = body[1:] if body.startswith(" ") else body
        soft = body.endswith(" ") and body != "-- "
        if soft and delsp:
            body = body[:-1]
        if open_paragraph and paragraphs and paragraphs[-1][0] == depth:
            paragraphs[-1] = (depth, paragraphs[-1][1] + body)
        else:
            paragraphs.append((depth, body))
        open_paragraph = soft
    return "\n".join((">" * depth + " " if depth else "") + body for depth, body in paragraphs)


def _charset(part: Message) -> str:
    """The part's charset as Python names it; UTF-8 when unknown, absent or ASCII (UTF-8
    reads ASCII alike, and 8-bit text declared as ASCII is most often UTF-8)."""
    try:
        name = codecs.lookup(part.get_content_charset() or "utf-8").name
    except (LookupError, ValueError, TypeError):
        return "utf-8"
    return "utf-8" if name == "ascii" else name


def _decoded(part: Message) -> str:
    """A text part's text: its charset if Python knows it, else UTF-8; undecodable bytes
    become U+FFFD."""
    payload = _payload(part)
    return payload.decode(_charset(part), errors="replace")


def _payload(part: Message) -> bytes:
    """The part's bytes, its transfer encoding undone (leniently: broken base64 gives
    what can be read); an attached message as its bytes."""
    try:
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message):
                return inner.as_bytes()
            return str(inner or "").encode("utf-8", errors="replace")
        payload = part.get_payload(decode=True)
    except (ValueError, IndexError, TypeError, LookupError, UnicodeError):
        payload = None
    if payload is None:
        raw = part.get_payload()
        payload = raw.encode("utf-8", errors="replace") if isinstance(raw, str) else b""
    return payload


def _default_name(number: int, content_type: str) -> str:
    return f"attachment-{number}{mimetypes.guess_extension(content_type) or ''}"


def filename_safe(name: str, *, number: int, content_type: str = "") -> str:
    """A file name fit to store and offer for download: no directories (``/`` or ``\\``),
    no control or invisible formatting characters, at most ``FILENAME_MAX`` characters
    (the extension kept); ``attachment-<number>`` (with the content type's extension)
    when nothing is left."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        char for char in name if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )
    name = " ".join(name.split()).strip(" .")
    if not name:
        return _default_name(number, content_type)
    if len(name) > FILENAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: FILENAME_MAX - len(extension) - 1] + "." + extension
        else:
            name = name[:FILENAME_MAX]
    return name


def _attachment(part: Message) -> Attachment:
    """The file of ``part``, its name as sent (named once all are known)."""
    content_type = printable(part.get_content_type())[:CONTENT_TYPE_MAX]
    payload = _payload(part)
    return Attachment(_filename(part), content_type, payload, len(payload))


# --- text -----------------------------------------------------------------------------


def _as_text(subtype: str, body: str) -> str:
    if subtype != "html":
        return body
    # inscriptis renders the layout as text and drops <script>, <style> and comments.
    try:
        return get_text(body)
    except Exception:  # lxml gives up on some byte soup: keep what tags leave
        return re.sub(r"<[^>]*>", " ", body)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    """One line ending, no control characters (PostgreSQL can't store NUL at all)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(lambda m: "\ufffd" if m.group() == "\x00" else "", text)


def _alternatives(key: str) -> list[str]:
    found = []
    for language in LANGUAGES:
        value = MAIL_LANGUAGES[language].get(key) or []
        found += value if isinstance(value, list) else [value]
    return [pattern for pattern in found if pattern]


_SIGNOFF = re.compile(
    rf"^{QUOTED_MATCH_INCLUDE}(?:"
    + "|".join(
        # Sweden's "/\w+" (a "/Anna" signature) would take a path such as /api/v2 too.
        [p for p in _alternatives("signatures") if not p.startswith("/")]
        + [re.escape(p) for p in _EXTRA_SIGNOFFS]
    )
    + ")",
    re.IGNORECASE,
)
_SENT_FROM = re.compile(
    rf"^{QUOTED_MATCH_INCLUDE}(?:{'|'.join(_alternatives('sent_from'))})"
    r" ?(?:[\w.<>:/ ]+|(?:\w+ ){1,3})$",
    re.IGNORECASE,
)
# "-- " (RFC 3676's signature separator, its space stripped) and Outlook's rule.
_SEPARATOR = re.compile(r"^(?:--|__|[-_]{32,})$")
_FORWARD_MARKERS = re.compile(
    r"^(?:-+ ?(?:Forwarded message|Original Message|Message transféré|Weitergeleitete Nachricht"
    r"|Mensaje reenviado|Messaggio inoltrato|Doorgestuurd bericht) ?-+|Begin forwarded message:)$",
    re.IGNORECASE,
)
_SENTENCE_END = (".", "?", "!", ":", ";")
# A signature's first line is short ("Sent from my iPhone", "Best regards, Jane Smith");
# a longer line is text, and is not run through the patterns above at all.
_SIGNATURE_LINE_MAX = 120


def _name_like(line: str) -> bool:
    """A line that could be a name or a title under a sign-off, not a sentence."""
    words = [w for w in line.split() if any(c.isalnum() for c in w)]
    return len(line) <= 60 and len(words) <= 8 and not line.endswith(_SENTENCE_END)


def _signoff(lines: list[str], index: int) -> bool:
    """Line ``index`` is a sign-off: the phrase alone (a name may follow on its line, its
    words capitalised), and the next line, if any, reads like a name."""
    match = _SIGNOFF.match(lines[index])
    if match is None:
        return False
    rest = lines[index][match.end() :].strip()
    if rest.strip(",.!:;- "):
        words = rest.lstrip(",:- ").split()
        if len(words) > 3 or not all(w[0].isupper() for w in words):
            return False
        if rest.endswith(("?", "!", ":", ";")):
            return False
    following = next((line for line in lines[index + 1 :] if line), None)
    return following is None or _name_like(following)


def _signature_removed(text: str) -> str:
    lines = text.split("\n")
    # The first line is never a signature: a message may start with "Thanks, ...".
    for index in range(1, len(lines)):
        line = lines[index]
        if len(line) > _SIGNATURE_LINE_MAX:
            continue
        if _SEPARATOR.match(line) or _SENT_FROM.match(line) or _signoff(lines, index):
            return "\n".join(lines[:index])
    return text


def new_text(full_text: str) -> str:
    """What the writer typed this time: the text above the quoted earlier messages (an
    "On ... wrote:" line, an Outlook "From:/Sent:" block, in the ``LANGUAGES``), without
    ``>`` quoted lines (bottom posting), forwarding markers, the signature (after "-- ",
    "Sent from my iPhone", or a sign-off such as "Best regards,") and indentation.
    The whole text when that leaves nothing, so nothing a person wrote is lost."""
    originals = [line.strip() for line in full_text[:_PARSED_MAX_CHARS].split("\n")]
    probes = [line[:_PARSED_LINE_MAX].rstrip() for line in originals]
    parsed = ReplyMessage(
        text="\n".join(probes),
        languages=list(LANGUAGES),
        # A "- item" list is the message, not a "-Pat" signature.
        keep_hyphen_lists=True,
    ).read()
    first = parsed.replies[0].full_body if parsed.replies else ""
    lines = [
        line
        for line in _whole(first.split("\n"), probes, originals)
        if not line.startswith(">") and not _FORWARD_MARKERS.match(line)
    ]
    text = _signature_removed("\n".join(lines).strip())
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text or full_text


def _whole(found: list[str], probes: list[str], originals: list[str]) -> list[str]:
    """``found`` (lines of ``probes``, in order) with each line as it was in
    ``originals`` before it was cut for the parser."""
    where: dict[str, list[int]] = {}
    for index, probe in enumerate(probes):
        where.setdefault(probe, []).append(index)
    whole, after = [], 0
    for line in found:
        indexes = where.get(line, [])
        position = bisect.bisect_left(indexes, after)
        if position < len(indexes):
            whole.append(originals[indexes[position]])
            after = indexes[position] + 1
        else:  # changed by the parser (a header taken out of it): as it is
            whole.append(line)
    return whole
