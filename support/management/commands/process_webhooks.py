from django.core.management.base import CommandError

from audit.attribution import AuditedCommand
from support.models import WebhookEvent
from support.webhooks import event_process, events_due


class Command(AuditedCommand):
    help = "Process stored webhook events that are due (the sweep), now, in this process."

    def handle(self, *args, **options):
        outcomes = {WebhookEvent.Status.PROCESSED: 0, WebhookEvent.Status.PENDING: 0}
        failed = 0
        while batch := events_due(limit=500):
            progressed = False
            for event_id in batch:
                status = event_process(event_id=event_id)
                if status == WebhookEvent.Status.FAILED:
                    failed += 1
                elif status is not None:
                    outcomes[status] += 1
                    progressed = progressed or status == WebhookEvent.Status.PROCESSED
            if not progressed:
                break  # what is left failed this round and waits for its backoff
        summary = (
            f"process_webhooks: {outcomes[WebhookEvent.Status.PROCESSED]} processed, "
            f"{outcomes[WebhookEvent.Status.PENDING]} to retry later, {failed} failed"
        )
        if failed or outcomes[WebhookEvent.Status.PENDING]:
            raise CommandError(summary)
        self.stdout.write(summary)
