from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "audit"
    verbose_name = "Audit"

    def ready(self):
        from audit.attribution import connect_celery_signals

        connect_celery_signals()
        # History tables created after audit's migration (a new model) get the
        # append-only trigger too. Not bound to a sender: any app's migrate may add one.
        post_migrate.connect(_install_append_only, dispatch_uid="audit.append_only")


def _install_append_only(sender, using="default", apps=None, plan=None, **kwargs):
    from audit.appendonly import install_missing

    install_missing(using=using, apps=apps)
