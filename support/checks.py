from django.conf import settings
from django.core.checks import Error, Warning, register
from standardwebhooks.webhooks import Webhook

# Each webhook source's secrets (support.webhooks.SOURCES): what is refused without them,
# and the ids of their checks.
SECRETS = [
    ("OPSDESK_WEBHOOK_SECRETS", "every product webhook", "support.W001", "support.E001"),
    ("OPSDESK_CRM_WEBHOOK_SECRETS", "every CRM webhook", "support.W002", "support.E002"),
]


@register(deploy=True)
def webhook_secrets_configured(app_configs, **kwargs):
    return [
        Warning(f"{name} is empty: {what} will be refused (401).", id=warning)
        for name, what, warning, _ in SECRETS
        if not getattr(settings, name)
    ]


@register()
def webhook_secrets_are_valid(app_configs, **kwargs):
    errors = []
    for name, _, _, error in SECRETS:
        for index, secret in enumerate(getattr(settings, name)):
            try:
                Webhook(secret)
            except Exception:
                errors.append(
                    Error(f"{name} entry {index + 1} is not a whsec_<base64> secret.", id=error)
                )
    return errors
