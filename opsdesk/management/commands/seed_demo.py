"""``manage.py seed_demo``: the demo data set of ``opsdesk.demo`` (docs/operations.md)."""

from __future__ import annotations

import argparse

from django.conf import settings
from django.core.management.base import CommandError

from audit.attribution import AuditedCommand
from customers.models import Customer
from opsdesk.demo import catalogue
from opsdesk.demo.seed import seed_demo


def _at_least(minimum: int):
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {number}")
        return number

    return parse


class Command(AuditedCommand):
    help = (
        "Create deterministic demo data (customers, contracts, orders, entitlements, usage, "
        "tickets, invoices, cases) and the demo staff users. Idempotent; refuses to run "
        "with DEBUG off unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=_at_least(0), default=catalogue.DEFAULT_CUSTOMERS,
            help=f"number of demo customers (default {catalogue.DEFAULT_CUSTOMERS})",
        )  # fmt: skip
        parser.add_argument(
            "--days", type=_at_least(1), default=catalogue.DEFAULT_DAYS,
            help=f"days of usage, ending yesterday (UTC) (default {catalogue.DEFAULT_DAYS})",
        )  # fmt: skip
        parser.add_argument(
            "--seed", type=int, default=catalogue.DEFAULT_SEED,
            help=f"random seed; the same seed on the same day gives the same data "
            f"(default {catalogue.DEFAULT_SEED})",
        )  # fmt: skip
        parser.add_argument(
            "--if-empty", action="store_true",
            help="seed only a database without customers (make run's first start)",
        )  # fmt: skip
        parser.add_argument(
            "--force", action="store_true",
            help="run even with DEBUG off (demo users get a published password)",
        )  # fmt: skip

    def handle(
        self, *args, customers: int, days: int, seed: int, force: bool, if_empty: bool, **options
    ):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo refuses to run with DEBUG off: it creates staff users with the "
                f"published password {catalogue.DEMO_PASSWORD!r} and fake customers. "
                "If this really is a demo environment, pass --force."
            )
        if if_empty and Customer.objects.exists():
            self.stdout.write("seed_demo: the database holds customers; nothing seeded")
            return
        result = seed_demo(
            customers=customers,
            days=days,
            seed=seed,
            progress=self.stderr.write,
        )
        self.stdout.write(result.summary())
