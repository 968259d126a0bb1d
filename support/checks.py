from django.conf import settings
from django.core.checks import Error, Warning, register
from standardwebhooks.webhooks import Webhook


@register(deploy=True)
def webhook_secrets_configured(app_configs, **kwargs):
    if not settings.OPSDESK_WEBHOOK_SECRETS:
        return [
            Warning(
                "OPSDESK_WEBHOOK_SECRETS is empty: every product webhook will be refused (401).",
                id="support.W001",
            )
        ]
    return []


@register()
def webhook_secrets_are_valid(app_configs, **kwargs):
    errors = []
    for index, secret in enumerate(settings.OPSDESK_WEBHOOK_SECRETS):
        try:
            Webhook(secret)
        except Exception:
            errors.append(
                Error(
                    f"OPSDESK_WEBHOOK_SECRETS entry {index + 1} is not a whsec_<base64> secret.",
                    id="support.E001",
                )
            )
    return errors
