"""The freshness panel of outside data (docs/product.md#freshness): ``selectors`` reads
it, ``views`` shows it at ``/admin/freshness/``.

Who opens it: whoever works failed deliveries, which is ops leads (and superusers), by
the permission that retries a failed webhook event. The sidebar shows its entry to them
only (``opsdesk.shell.admin_site.SIDEBAR``)."""

PERMISSION = "support.change_webhookevent"
