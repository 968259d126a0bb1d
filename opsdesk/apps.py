from django.apps import AppConfig


class OpsdeskConfig(AppConfig):
    """The layer above the apps: roles, the customer overview, cross-app pages and commands."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "opsdesk"
    verbose_name = "opsdesk"

    def ready(self) -> None:
        # Staff notices said by any layer (kit.notify) are stored and delivered here.
        from kit.notify import staff_notice
        from opsdesk.notifications.services import on_staff_notice

        staff_notice.connect(on_staff_notice, dispatch_uid="opsdesk.notifications")
