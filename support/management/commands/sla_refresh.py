from audit.attribution import AuditedCommand
from support.models import Ticket
from support.ticket_sla import sla_policy_book, ticket_sla_refresh


class Command(AuditedCommand):
    help = (
        "Bring the stored service levels of the open tickets up to date: after deploying "
        "them, after editing a policy, after customers' contracts changed (a ticket's own "
        "next event does it for that ticket). Idempotent; one history entry per ticket "
        "that changed."
    )

    def handle(self, *args, **options):
        book = sla_policy_book()
        ids = Ticket.objects.filter(status__in=Ticket.OPEN_STATES).order_by("pk")
        seen = changed = 0
        for pk in ids.values_list("pk", flat=True).iterator():
            seen += 1
            changed += bool(ticket_sla_refresh(ticket=Ticket(pk=pk), book=book))
        self.stdout.write(f"sla_refresh: {seen} open tickets, {changed} updated")
