from django.apps import AppConfig


class SupportConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "support"

    def ready(self):
        # Registers the handlers of the event types support owns.
        from support import (  # noqa: F401
            checks,
            crm_events,
            order_events,
            ticket_events,
            usage_events,
        )
