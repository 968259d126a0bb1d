"""The hostile drill's requests to the admin's forms, signed in as a staff user with the
CSRF token handled like a browser: sign-in, a customer's change form, a ticket's
note/reply, the invoice CSV upload, search boxes and filters."""

from __future__ import annotations

import html
import re
import uuid
from html.parser import HTMLParser
from urllib.parse import urlencode

from drills import Checks
from drills.hostile_inputs import BAD_FORM_TEXT, INJECTIONS, UNICODE, Outcome, classify
from drills.stack import PASSWORD, Stack
from drills.webhooks import post

# --- the admin -----------------------------------------------------------------------


class _Form(HTMLParser):
    """The fields of the form with ``id="<model>_form"`` (Django admin's change form)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, []
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside or ("name" not in a and tag != "option"):
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button", "file", "image"):
                return
            self.fields.append([a["name"], a.get("value", "on" if kind == "checkbox" else "")])
        elif tag == "select":
            self._select = [a["name"], None, "multiple" in a]
        elif tag == "option" and self._select is not None:
            if "selected" in a:
                self.fields.append([self._select[0], a.get("value", "")])
        elif tag == "textarea":
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, value = self._textarea
            self.fields.append([name, value.removeprefix("\n")])
            self._textarea = None


class Browser:
    """A signed-in admin session over plain HTTP: cookies kept, CSRF token sent."""

    def __init__(self, base: str):
        self.base, self.cookies = base, {}

    def request(
        self, method: str, path: str, data: bytes = b"", content_type: str = "", csrf: bool = True
    ):
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Referer": self.base + path,
        }
        if content_type:
            headers["Content-Type"] = content_type
        status, body, response_headers = post(self.base, path, data, headers, method=method)
        for name, value in response_headers:
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0]
                key, _, val = cookie.partition("=")
                self.cookies[key] = val
        return status, body.decode("utf-8", "replace"), response_headers

    def get(self, path: str):
        return self.request("GET", path)

    def token(self, page: str) -> str:
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        return match.group(1) if match else ""

    def post_form(self, path: str, fields: list, *, csrf: bool = True, page: str | None = None):
        if page is None:
            _, page, _ = self.get(path)
        if csrf:
            fields = [["csrfmiddlewaretoken", self.token(page)], *fields]
        pairs = [tuple(field) for field in fields]
        data = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
        return self.request("POST", path, data, "application/x-www-form-urlencoded")

    def post_file(self, path: str, name: str, filename: str, content: bytes):
        _, page, _ = self.get(path)
        boundary = f"drills{uuid.uuid4().hex}"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n'
            f"{self.token(page)}\r\n".encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: text/csv\r\n\r\n'.encode("utf-8", "replace")
            + content
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        return self.request(
            "POST", path, b"".join(parts), f"multipart/form-data; boundary={boundary}"
        )

    def login(self, username: str, password: str):
        return self.post_form(
            "/admin/login/?next=/admin/",
            [["username", username], ["password", password], ["next", "/admin/"]],
        )


def _form_result(browser: Browser, status, page: str, headers: dict, *, saved_to: str = "") -> str:
    """accepted | message | 4xx | 5xx for an admin form post."""
    if status is None or status >= 500:
        return classify(status)
    if 400 <= status < 500:
        return "4xx"
    if status == 200:
        errors = (
            "errornote",
            "errorlist",
            "Please correct",
            "Please enter a correct",
            "Not saved",
            "Not imported",
            "rejected",
        )
        return "message" if any(e in page for e in errors) else "accepted"
    if status in (301, 302, 303):
        location = {k.lower(): v for k, v in headers}.get("location", "")
        if location.startswith("http"):
            location = "/" + location.split("/", 3)[3]
        _, target, _ = browser.get(location)
        said = ("Not saved", "Nothing changed", "Perhaps it was deleted")
        return "message" if any(text in target for text in said) else "accepted"
    return f"status {status}"


def admin_drill(stack: Stack, checks: Checks) -> list[Outcome]:
    outcomes: list[Outcome] = []

    def record(target, case, expect, response, **kwargs):
        status, page, headers = response
        result = _form_result(browser, status, page, headers, **kwargs)
        outcomes.append(Outcome(target, case, expect, status, result))
        return result

    browser = Browser(stack.base)
    status, page, _ = browser.login("admin", PASSWORD)
    checks.check(status == 302 and "sessionid" in browser.cookies, f"signed in as admin ({status})")

    # A customer's change form: the real form, one field made hostile at a time.
    customer_id, name = stack.sql("SELECT id, name FROM customers_customer ORDER BY id LIMIT 1")[0]
    change = f"/admin/customers/customer/{customer_id}/change/"
    _, page, _ = browser.get(change)
    parser = _Form("customer_form")
    parser.feed(page)
    base_fields = [f for f in parser.fields if f[0] != "csrfmiddlewaretoken"]
    field_names = {f[0] for f in base_fields}
    print(f"  customer form: {len(base_fields)} fields ({', '.join(sorted(field_names)[:8])}...)")

    def customer_post(case, expect, **changes):
        fields = [[k, changes.get(k, v)] for k, v in base_fields]
        record("customer form", case, expect, browser.post_form(change, fields))

    customers_before = stack.scalar("SELECT count(*) FROM customers_customer")
    customer_post("name empty", "message", name="")
    customer_post("name 10,000 chars", "message", name="n" * 10_000)
    for text in BAD_FORM_TEXT:
        customer_post(f"name {text[:10]!r}", "message", name=text)
    customer_post("status unknown", "message", status="<script>")
    customer_post("account manager is text", "message", account_manager="1 OR 1=1")
    customer_post("account manager does not exist", "message", account_manager="999999999")
    other = stack.scalar(
        "SELECT external_id FROM customers_customer WHERE id <> %s LIMIT 1", [customer_id]
    )
    customer_post("tenant id of another customer", "message", external_id=other)
    customer_post("CRM id 10,000 chars", "message", crm_id="c" * 10_000)
    customer_post("name only whitespace", "message", name=" \t\n ")
    customer_post("seats negative", "message", seats="-5") if "seats" in field_names else None
    record(
        "customer form",
        "no CSRF token",
        "4xx",
        browser.post_form(change, [[k, v] for k, v in base_fields], csrf=False),
    )
    stored_names = {}
    for text in INJECTIONS[:4] + UNICODE[:3]:
        customer_post(f"valid, name {text[:20]!r}", "accepted", name=f"{name} {text}")
        stored_names[f"{name} {text}"] = stack.scalar(
            "SELECT name FROM customers_customer WHERE id = %s", [customer_id]
        )
    verbatim = sum(1 for wanted, got in stored_names.items() if wanted == got)
    customer_post("restore the name", "accepted", name=name)
    _, page, _ = browser.get(change)
    escaped = "<script>alert('x')</script>" not in page
    checks.check(
        verbatim == len(stored_names) and escaped,
        f"customer: {verbatim} of {len(stored_names)} hostile-text names stored verbatim, "
        f"shown escaped; customers {customers_before} -> "
        f"{stack.scalar('SELECT count(*) FROM customers_customer')}",
    )

    # A ticket's note, from the composer of its page (the page's one form: its triage
    # fields as shown, the text, the button's ``send``).
    ticket_id = stack.scalar("SELECT id FROM support_ticket ORDER BY id LIMIT 1")
    comment = f"/admin/support/ticket/{ticket_id}/change/"
    _, page, _ = browser.get(comment)
    parser = _Form("ticket_form")
    parser.feed(page)
    ticket_fields = [
        f for f in parser.fields if f[0] not in ("csrfmiddlewaretoken", "body", "then_next")
    ]
    comments_before = stack.scalar(
        "SELECT count(*) FROM support_ticketcomment WHERE ticket_id = %s", [ticket_id]
    )

    def comment_post(case, expect, **fields):
        record(
            "ticket comment",
            case,
            expect,
            browser.post_form(
                comment, ticket_fields + [[k, v] for k, v in fields.items()], page=page
            ),
        )

    comment_post("empty body", "message", send="note", body="")
    comment_post("whitespace body", "message", send="note", body="   \n\t ")
    comment_post("body 20,001 chars", "message", send="note", body="b" * 20_001)
    comment_post("button unknown", "message", send="shout", body="hello")
    # No button is Save: the text is kept for the composer, nothing is sent.
    comment_post("button missing", "accepted", body="hello")
    for text in BAD_FORM_TEXT:
        comment_post(f"body {text[:10]!r}", "message", send="note", body=text)
    valid_notes = [f"drill note {text}" for text in INJECTIONS + UNICODE]
    for text in valid_notes:
        comment_post(f"valid note {text[11:31]!r}", "accepted", send="note", body=text)
    record(
        "ticket comment",
        "no CSRF token",
        "4xx",
        browser.post_form(comment, [["send", "note"], ["body", "x"]], csrf=False),
    )
    record(
        "ticket comment",
        "ticket does not exist",
        "message",
        browser.post_form(
            "/admin/support/ticket/999999999/change/", [["send", "note"], ["body", "x"]], page=page
        ),
    )
    record(
        "ticket comment",
        "ticket id is text",
        "message",
        browser.post_form(
            "/admin/support/ticket/abc'--/change/", [["send", "note"], ["body", "x"]], page=page
        ),
    )
    notes = [
        r[0]
        for r in stack.sql(
            "SELECT body FROM support_ticketcomment WHERE ticket_id = %s ORDER BY id", [ticket_id]
        )
    ]
    added = len(notes) - comments_before
    checks.check(
        added == len(valid_notes) and notes[-len(valid_notes) :] == valid_notes,
        f"ticket: {added} notes stored (the {len(valid_notes)} valid ones, verbatim), none else",
    )

    # The invoice CSV upload.
    upload = "/admin/billing/invoice/upload/"
    invoices_before = stack.scalar("SELECT count(*) FROM billing_invoice")
    for case, content in (
        ("empty file", b""),
        ("binary junk", bytes(range(256)) * 20),
        ("not UTF-8", "number,amount\nINV-1,\xe9\xe8\n".encode("latin-1")),
        ("NUL bytes", b"number,amount\x00\nINV\x00,1\n"),
        ("header only", b"number,customer,amount_due\n"),
        ("wrong columns", b"a,b,c\n1,2,3\n"),
        (
            "injection in every cell",
            (
                "number,tenant_id,amount_due,currency,status\n"
                + ",".join([INJECTIONS[0], INJECTIONS[3], "1e999", "XXX", "<b>"])
                + "\n"
            ).encode(),
        ),
        ("huge row", b"number,amount_due\n" + b"9" * 200_000 + b",1\n"),
        ("unbalanced quotes", b'number,amount_due\n"INV-1,1\n'),
        ("10,000 empty lines", b"number\n" + b"\n" * 10_000),
    ):
        record(
            "invoice upload", case, "message", browser.post_file(upload, "file", "x.csv", content)
        )
    record("invoice upload", "no file", "message", browser.post_form(upload, []))
    record(
        "invoice upload",
        "filename with injection",
        "message",
        browser.post_file(upload, "file", "<script>'; --.csv", b"a,b\n"),
    )
    invoices_after = stack.scalar("SELECT count(*) FROM billing_invoice")
    checks.check(
        invoices_after == invoices_before,
        f"invoices: none stored from hostile files ({invoices_before} -> {invoices_after})",
    )

    # Search boxes and filters.
    lists = [
        "/admin/customers/customer/",
        "/admin/support/ticket/",
        "/admin/support/webhookevent/",
        "/admin/billing/invoice/",
    ]
    for path in lists:
        for text in [
            "' OR 1=1 --",
            "<script>alert(1)</script>",
            "%",
            "_",
            "\\",
            "日本語 🔥",
            "q" * 5000,
        ]:
            status, page, _headers = browser.get(f"{path}?{urlencode({'q': text})}")
            ok = status == 200 and html.escape(text[:50], quote=False) in page.replace(
                "&#x27;", "'"
            )
            # gunicorn refuses a request line over 4 KiB with a 414 before Django sees it.
            expect = "4xx" if len(text) > 4000 else "accepted"
            outcomes.append(
                Outcome(
                    "search",
                    f"{path} q={text[:12]!r}",
                    expect,
                    status,
                    classify(status) if ok or status != 200 else "not echoed escaped",
                )
            )
        for query in (
            "status__exact=%3Cscript%3E",
            "id__gt=abc",
            "o=999",
            "p=99999",
            "created_at__gte=not-a-date",
            "q=%00",
        ):
            status, _, _ = browser.get(f"{path}?{query}")
            # The admin answers an unusable filter by redirecting to ?e=1 or showing the
            # list; either is fine, a 5xx is not.
            outcomes.append(
                Outcome(
                    "filter",
                    f"{path}?{query}",
                    "accepted",
                    status,
                    "accepted" if status in (200, 302) else classify(status),
                )
            )

    # The sign-in form, last: failures lock a username out (django-axes).
    for username, password in (
        ("", ""),
        ("admin", ""),
        ("' OR 1=1 --", "x"),
        ("<script>", "x"),
        ("u" * 10_000, "x"),
        ("adm\u0000in", "x"),
        ("日本語", "🔥"),
        ("admin", "' OR '1'='1"),
        ("nobody", "p" * 100_000),
    ):
        result = record(
            "sign-in",
            f"user {username[:12]!r}",
            "message",
            Browser(stack.base).login(username, password),
        )
        if result == "4xx":  # a lockout (429) is a clear refusal too
            outcomes[-1].result = "message"
    return outcomes
