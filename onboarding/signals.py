"""Follow contracts: activation generates the checklist, a scope change syncs it.

The work runs in a Celery task after the contract's transaction commits; the signal
only compares the contract with how it was loaded (no query) and enqueues.
"""

from __future__ import annotations

from django.db.models.signals import post_init, post_save

from customers.models import Contract
from customers.signals import contracts_saved
from kit.publish import publish_after_commit


def _state(contract: Contract) -> tuple:
    """Status, then the scope onboarding depends on (plan, seats, integrations)."""
    return (contract.status, contract.plan, contract.seats, sorted(contract.integrations or []))


def remember_loaded_state(sender, instance, **kwargs):
    # A contract loaded with deferred fields would pay a query per field here; such
    # partial loads are reads, never the edit of a contract.
    if not instance.get_deferred_fields():
        instance._onboarding_loaded = _state(instance)


def follow_contract(sender, instance, created, raw=False, **kwargs):
    before = None if created else getattr(instance, "_onboarding_loaded", None)
    now = _state(instance)
    instance._onboarding_loaded = now
    if raw or instance.status != Contract.Status.ACTIVE:
        return
    if before is None or before[0] != Contract.Status.ACTIVE:
        publish_after_commit("onboarding.checklist_generate", instance.pk)
    elif before[1:] != now[1:]:
        publish_after_commit("onboarding.checklist_sync", instance.pk)


def follow_contracts(sender, contracts, **kwargs):
    """Contracts a bulk path wrote (``customers.signals.contracts_saved``): each followed
    as its own save would have been."""
    for contract, created in contracts:
        follow_contract(sender, contract, created)


def connect() -> None:
    post_init.connect(remember_loaded_state, sender=Contract, dispatch_uid="onboarding.loaded")
    post_save.connect(follow_contract, sender=Contract, dispatch_uid="onboarding.follow")
    contracts_saved.connect(
        follow_contracts, sender=Contract, dispatch_uid="onboarding.follow_bulk"
    )
