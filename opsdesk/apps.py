from django.apps import AppConfig


class OpsdeskConfig(AppConfig):
    """The layer above the apps: roles, the customer overview, cross-app pages and commands."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "opsdesk"
    verbose_name = "opsdesk"
