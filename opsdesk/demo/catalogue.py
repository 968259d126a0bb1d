"""What the demo data is made of: staff, stories, products, plans, ticket topics, names."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from customers.models import Contract
from kit import roles
from support.models import Ticket

DEMO_PASSWORD = "opsdesk-demo"
DEFAULT_CUSTOMERS = 40
DEFAULT_DAYS = 90
DEFAULT_SEED = 7
# 250 customers x 365 days is ~90k usage rows (+ their history) per transaction.
DEFAULT_CHUNK_SIZE = 250
DEMO_EMAIL_DOMAIN = "opsdesk.example"


@dataclass(frozen=True)
class DemoStaff:
    username: str
    first_name: str
    last_name: str
    group: str | None
    is_superuser: bool = False


DEMO_STAFF = (
    DemoStaff("support", "Sam", "Rivera", roles.SUPPORT),
    DemoStaff("manager", "Alex", "Morgan", roles.ACCOUNT_MANAGERS),
    DemoStaff("opslead", "Olga", "Petrova", roles.OPS_LEADS),
    DemoStaff("admin", "Ada", "Lindqvist", None, is_superuser=True),
    DemoStaff("dana", "Dana", "Kim", roles.ACCOUNT_MANAGERS),
    DemoStaff("lee", "Lee", "Okafor", roles.ACCOUNT_MANAGERS),
)

# Who manages customer i: MANAGER_PATTERN[i % 20]. `manager` gets 9 of every 20 and is
# spread so that every prefix of the customers is at least a third his (the digest demo
# needs his inbox full); one in twenty has nobody, as in real CRMs.
MANAGER_PATTERN = (
    "manager", "dana", "lee", "manager", "manager", "dana", "lee", "manager", "manager", None,
    "dana", "manager", "lee", "manager", "dana", "manager", "lee", "dana", "manager", "lee",
)  # fmt: skip


class Story:
    """What makes a customer worth a look in the demo (at most one each)."""

    USAGE_DROP = "usage_drop"  # WAU down >30% on the week
    ERROR_SPIKE = "error_spike"  # error rate yesterday far above its usual
    DORMANT = "dormant"  # nobody logged in for 25 days
    NO_USAGE_YESTERDAY = "no_usage_yesterday"  # the product sent nothing for yesterday
    RENEWAL_SOON = "renewal_soon"  # active contract ends within 30 days, renewal drafted
    NEW_ONBOARDING = "new_onboarding"  # signed, contract still a draft, trial usage
    FAILED_FULFILMENT = "failed_fulfilment"  # ordered a retired SKU: open case
    PROBLEM_REDEMPTION = "problem_redemption"  # code redeemed by someone else: case
    AMOUNT_MISMATCH = "amount_mismatch"  # last month invoiced 10% short: case
    RESOLVED_CASE = "resolved_case"  # a failed fulfilment fixed by ops, case closed
    OVERDUE_INVOICE = "overdue_invoice"  # an invoice of two months ago still open


# The first twelve customers carry one story each, so a small run shows them all; most of
# them belong to `manager`, whose digest is the one people look at.
FIXED_STORIES = {
    0: Story.RESOLVED_CASE,
    1: Story.FAILED_FULFILMENT,
    2: Story.PROBLEM_REDEMPTION,
    3: Story.USAGE_DROP,
    4: Story.ERROR_SPIKE,
    5: Story.AMOUNT_MISMATCH,
    6: Story.OVERDUE_INVOICE,
    7: Story.DORMANT,
    8: Story.NO_USAGE_YESTERDAY,
    10: Story.NEW_ONBOARDING,
    11: Story.RENEWAL_SOON,
}
# Beyond those, stories occur at these rates (cumulative draw, one story at most).
RANDOM_STORY_RATES = (
    (Story.USAGE_DROP, 0.02),
    (Story.ERROR_SPIKE, 0.01),
    (Story.DORMANT, 0.015),
    (Story.NO_USAGE_YESTERDAY, 0.01),
    (Story.RENEWAL_SOON, 0.01),
    (Story.NEW_ONBOARDING, 0.02),
    (Story.FAILED_FULFILMENT, 0.01),
    (Story.PROBLEM_REDEMPTION, 0.005),
    (Story.OVERDUE_INVOICE, 0.02),
)
USAGE_STORIES = {Story.USAGE_DROP, Story.ERROR_SPIKE, Story.DORMANT}

TAGS = {
    "unmatched": "Sent by a tenant opsdesk does not know; match it to a customer.",
    "billing": "Invoices, payments, pricing.",
    "sso": "Single sign-on and user provisioning.",
    "vip": "Enterprise customer: answer first.",
    "bug": "Something in the product is broken.",
    "renewal": "About an upcoming renewal.",
}


@dataclass(frozen=True)
class DemoProduct:
    sku: str
    name: str
    term_days: int | None
    unit_price: Decimal
    max_quantity: int
    retired: bool = False


PRODUCTS = (
    DemoProduct("SEAT-PRO-1Y", "Pro seat, 1 year", 365, Decimal("300"), 10),
    DemoProduct("SEAT-VIEWER-1Y", "Viewer seat, 1 year", 365, Decimal("60"), 10),
    DemoProduct("ADDON-AI-1Y", "AI assistant add-on, 1 year", 365, Decimal("120"), 5),
    DemoProduct("TRAIN-ADMIN", "Admin training voucher", 180, Decimal("450"), 3),
    DemoProduct("TRAIN-CERT", "Certification exam voucher", 90, Decimal("200"), 3),
    DemoProduct("REPORT-PACK", "Report template pack", None, Decimal("150"), 2),
    DemoProduct("SEAT-PRO-2023", "Pro seat, 1 year (2023 pricing)", 365, Decimal("250"), 10, True),
)
RETIRED_SKU = "SEAT-PRO-2023"

CURRENCY_RATES = {"EUR": Decimal("1"), "USD": Decimal("1.1"), "GBP": Decimal("0.85")}
LEGAL_FORMS = {
    "EUR": ("GmbH", "SAS", "B.V.", "AB", "Oy", "S.L.", "S.p.A.", "AG"),
    "USD": ("Inc.", "LLC", "Corp."),
    "GBP": ("Ltd", "plc", "LLP"),
}
NAME_PREFIXES = (
    "Northwind", "Bluefin", "Acorn", "Brightline", "Cobalt", "Driftwood", "Evergreen",
    "Fjord", "Granite", "Harbor", "Ironbark", "Juniper", "Kestrel", "Lumen", "Meridian",
    "Nimbus", "Oakridge", "Pinnacle", "Quarry", "Redwood", "Saltmarsh", "Tidewater",
    "Umber", "Vantage", "Willow", "Yarrow", "Zephyr", "Alder", "Beacon", "Cinder", "Delta",
    "Ember", "Falcon", "Glacier", "Heron", "Indigo", "Jasper", "Keystone", "Larch",
    "Mistral", "Nordic", "Orchid", "Polaris", "Quill", "Rook", "Sable", "Talon", "Upland",
    "Verdant", "Wren",
)  # fmt: skip
NAME_INDUSTRIES = (
    "Logistics", "Analytics", "Health", "Robotics", "Foods", "Energy", "Capital", "Media",
    "Labs", "Systems", "Retail", "Freight", "Software", "Insurance", "Mobility", "Pharma",
    "Legal", "Studios", "Security", "Travel",
)  # fmt: skip
FIRST_NAMES = (
    "Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kara", "Luca", "Maya", "Nils", "Olivia", "Pedro", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "Will", "Xenia", "Yusuf", "Zoe", "Amir", "Bianca", "Carlos", "Dina",
)  # fmt: skip
LAST_NAMES = (
    "Andersen", "Becker", "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Hansen",
    "Ito", "Jansen", "Kowalski", "Lopez", "Martin", "Nowak", "Okoro", "Patel", "Quist",
    "Rossi", "Schmidt", "Tanaka", "Urban", "Virtanen", "Weber", "Young", "Zimmermann",
)  # fmt: skip


@dataclass(frozen=True)
class PlanTerms:
    seats: tuple[int, ...]
    fee_per_seat: Decimal
    extra_seat: Decimal
    integrations: tuple[str, ...]
    integration_count: tuple[int, int]


PLAN_TERMS = {
    Contract.Plan.STARTER: PlanTerms(
        (5, 10, 15, 20, 25), Decimal("18"), Decimal("20"), ("slack", "data_import"), (0, 1)
    ),
    Contract.Plan.GROWTH: PlanTerms(
        (25, 30, 40, 50, 60, 75, 100, 120, 150),
        Decimal("29"),
        Decimal("25"),
        ("sso", "crm_sync", "slack", "data_import", "api"),
        (1, 3),
    ),
    Contract.Plan.ENTERPRISE: PlanTerms(
        (150, 200, 250, 300, 400, 500, 750, 1000),
        Decimal("24"),
        Decimal("22"),
        ("crm_sync", "data_import", "slack", "api", "warehouse"),
        (2, 4),
    ),
}

PRIORITIES = (
    Ticket.Priority.LOW,
    Ticket.Priority.NORMAL,
    Ticket.Priority.HIGH,
    Ticket.Priority.URGENT,
)


@dataclass(frozen=True)
class TicketTopic:
    subject: str
    category: str
    priority: str
    tags: tuple[str, ...]
    detail: str


C, P = Ticket.Category, Ticket.Priority
TICKET_TOPICS = (
    TicketTopic("Cannot log in with SSO", C.ACCESS, P.HIGH, ("sso",),
                "Since this morning our users get an error from the identity provider."),
    TicketTopic("Password reset email never arrives", C.ACCESS, P.NORMAL, (),
                "I requested a reset three times; nothing in the inbox or spam folder."),
    TicketTopic("New hire cannot see the shared workspace", C.ACCESS, P.NORMAL, (),
                "Our new colleague was invited yesterday but sees an empty workspace."),
    TicketTopic("Locked out after changing MFA phone", C.ACCESS, P.HIGH, (),
                "I changed phones and cannot pass the second factor any more."),
    TicketTopic("Please transfer admin rights to a colleague", C.ACCESS, P.LOW, (),
                "I am leaving the company at the end of the month."),
    TicketTopic("SCIM provisioning stopped creating users", C.ACCESS, P.HIGH, ("sso",),
                "Users added in our directory are no longer created in the product."),
    TicketTopic("Invoice shows the wrong VAT number", C.BILLING, P.NORMAL, ("billing",),
                "Our finance team cannot book the invoice with this VAT number."),
    TicketTopic("Copy of last month's invoice, please", C.BILLING, P.LOW, ("billing",),
                "Could you send last month's invoice to our accounts payable address?"),
    TicketTopic("Charged for more seats than we use", C.BILLING, P.HIGH, ("billing",),
                "The invoice counts more seats than we have active users."),
    TicketTopic("Change of billing contact", C.BILLING, P.LOW, ("billing",),
                "Please send future invoices to our new finance manager."),
    TicketTopic("Question about renewal pricing", C.BILLING, P.NORMAL, ("billing", "renewal"),
                "Our contract ends soon; what would a renewal with more seats cost?"),
    TicketTopic("CSV export times out for large reports", C.BUG, P.NORMAL, ("bug",),
                "Exports with more than a year of data never finish."),
    TicketTopic("Dashboard charts show no data since this morning", C.BUG, P.HIGH, ("bug",),
                "All charts on the main dashboard are empty, the tables still work."),
    TicketTopic("Duplicate notifications in Slack", C.BUG, P.LOW, ("bug",),
                "Every alert arrives twice in our Slack channel."),
    TicketTopic("Filters reset after reloading the page", C.BUG, P.LOW, ("bug",),
                "Saved filters are lost whenever the page reloads."),
    TicketTopic("Report totals differ from the API", C.BUG, P.NORMAL, ("bug",),
                "The monthly report and the API disagree on last month's totals."),
    TicketTopic("How do I invite users in bulk?", C.HOW_TO, P.LOW, (),
                "We need to invite about 80 people; is there a CSV upload?"),
    TicketTopic("Can we restrict access by IP range?", C.HOW_TO, P.NORMAL, (),
                "Our security team asks whether logins can be limited to our office network."),
    TicketTopic("Connecting our data warehouse", C.HOW_TO, P.NORMAL, (),
                "Which credentials does the warehouse export need?"),
    TicketTopic("Where do I find our API key?", C.HOW_TO, P.LOW, (),
                "The documentation mentions an API key but I cannot find it."),
    TicketTopic("Setting up single sign-on with Okta", C.HOW_TO, P.NORMAL, ("sso",),
                "We would like to switch our users to Okta next week."),
    TicketTopic("API returning 500 errors", C.INCIDENT, P.URGENT, (),
                "Since last night a large share of our API calls fail with HTTP 500."),
    TicketTopic("Everything is very slow today", C.INCIDENT, P.HIGH, (),
                "Pages take 20 seconds or more to load for the whole team."),
    TicketTopic("Webhooks to our CRM stopped arriving", C.INCIDENT, P.URGENT, (),
                "Our CRM has received no events from you for several hours."),
    TicketTopic("Security questionnaire from our procurement team", C.OTHER, P.NORMAL, (),
                "Procurement needs the attached questionnaire filled in before renewal."),
    TicketTopic("Feature request: scheduled PDF reports", C.OTHER, P.LOW, (),
                "We would love to receive the weekly report as a PDF by email."),
    TicketTopic("Request for a roadmap call", C.OTHER, P.LOW, (),
                "Could we get 30 minutes with product to discuss the roadmap?"),
)  # fmt: skip
del C, P
TOPIC_BY_SUBJECT = {topic.subject: topic for topic in TICKET_TOPICS}


@dataclass(frozen=True)
class UnmatchedRequest:
    tenant_id: str
    email: str
    name: str
    subject: str
    category: str
    priority: str
    tags: tuple[str, ...]
    message: str
    hours_ago: int


# Tenants the product knows and opsdesk does not (yet): what `unmatched` triage is for.
UNMATCHED_REQUESTS = (
    UnmatchedRequest("hooli-trial-4c1d", "gavin@hooli.example", "Gavin B.",
                     "Trial workspace: how do I add colleagues?", Ticket.Category.HOW_TO,
                     Ticket.Priority.NORMAL, ("unmatched",),
                     "We started a trial last week; how do I invite my team?", 5),
    UnmatchedRequest("piedpiper-9e02", "richard@piedpiper.example", "Richard H.",
                     "Our account says it is suspended", Ticket.Category.ACCESS,
                     Ticket.Priority.HIGH, ("unmatched",),
                     "Nobody on our team can log in; the page says the account is suspended.", 2),
    UnmatchedRequest("initech-7a3f", "bill@initech.example", "Bill L.",
                     "Refund for a duplicate charge", Ticket.Category.BILLING,
                     Ticket.Priority.NORMAL, ("unmatched", "billing"),
                     "We were charged twice for the same order last month.", 30),
)  # fmt: skip
UNKNOWN_TENANT_ORDER_TENANT = "initech-7a3f"
