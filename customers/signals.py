"""What customers' bulk write paths tell the apps above them.

``bulk_create`` and ``bulk_update`` send no ``post_save``: a path that writes contracts in
bulk (``customers.crm_import``) sends ``contracts_saved`` with them instead, so what
follows a contract's save (its onboarding checklist, ``onboarding.signals``) follows them
exactly as it follows ``Contract.save()``. customers imports no app above it; they listen.
"""

from django.dispatch import Signal

# sender: Contract; contracts: [(contract, created), ...], each as loaded before the write
# (its post_init state) and written since; sent inside the write's transaction.
contracts_saved = Signal()
