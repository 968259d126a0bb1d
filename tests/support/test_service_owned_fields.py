"""No admin form edits a field a service owns (kit.service_owned).

Generated from the admin site: every registered ModelAdmin, its add and change forms as
a superuser sees them (the fields of ``get_form`` minus ``get_readonly_fields``), its
inlines' forms and its changelist's ``list_editable``. A service-owned field editable
anywhere fails, and so does a model whose form an admin page shows without a
declaration: a new admin cannot ship without a decision on what its services own.

An add form may hold a service-owned field only when the admin's add goes through a
service that takes it as a parameter (``ModelAdmin.add_service``): a new ticket's
priority is ``ticket_create``'s, which sets the deadline from it. A change form may hold
one only when the admin applies it through a service, never by saving the form
(``ModelAdmin.change_service_fields``): the ticket page's status, priority, assignee and
tags are ``ticket_update``'s.
"""

from __future__ import annotations

import inspect

import pytest
from django.contrib import admin
from django.test import RequestFactory

from kit.service_owned import SERVICE_OWNED, service_owned
from tests.records import populate

pytestmark = pytest.mark.django_db


def registered() -> list[tuple[type, admin.ModelAdmin]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label_lower)


def superuser_request(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    return request


def service_parameters(model_admin) -> set[str]:
    service = getattr(model_admin, "add_service", None)
    return set(inspect.signature(service).parameters) if service else set()


def editable_forms(model_admin, request, obj):
    """(model, where, editable field names) of every form of one page of the admin."""
    where = "add" if obj is None else "change"
    form = model_admin.get_form(request, obj, change=obj is not None)
    readonly = set(model_admin.get_readonly_fields(request, obj))
    yield model_admin.model, where, set(form.base_fields) - readonly
    for inline in model_admin.get_inline_instances(request, obj):
        formset = inline.get_formset(request, obj)
        readonly = set(inline.get_readonly_fields(request, obj))
        yield inline.model, f"{where}, inline", set(formset.form.base_fields) - readonly


def test_every_model_an_admin_page_edits_declares_its_service_owned_fields(superuser):
    request = superuser_request(superuser)
    shown = set()
    for model, model_admin in registered():
        shown.add(model._meta.label_lower)
        shown.update(i.model._meta.label_lower for i in model_admin.get_inline_instances(request))
    assert sorted(shown - SERVICE_OWNED.keys()) == []
    assert sorted(SERVICE_OWNED.keys() - shown) == []


def test_every_declared_field_is_a_field_of_its_model():
    from django.apps import apps

    unknown = []
    for label in SERVICE_OWNED:
        model = apps.get_model(label)
        names = {field.name for field in model._meta.get_fields()}
        unknown += [f"{label}.{name}" for name in service_owned(model) if name not in names]
    assert unknown == []


def test_no_admin_form_edits_a_field_a_service_owns(superuser, customer, templates):
    from onboarding.services import checklist_generate

    populate(1)
    checklist_generate(contract=customer.contracts.get())
    request = superuser_request(superuser)
    editable_anywhere = []
    for model, model_admin in registered():
        pages = [model.objects.order_by("pk").first() or model()]
        if model_admin.has_add_permission(request):
            pages.append(None)
        for obj in pages:
            for form_model, where, fields in editable_forms(model_admin, request, obj):
                owned = set(service_owned(form_model))
                if where == "add":
                    owned -= service_parameters(model_admin)
                elif where == "change":
                    owned -= set(getattr(model_admin, "change_service_fields", ()))
                label = form_model._meta.label_lower
                editable_anywhere += [f"{label}.{name} ({where})" for name in fields & owned]
        owned = set(service_owned(model))
        editable_anywhere += [
            f"{model._meta.label_lower}.{name} (list_editable)"
            for name in set(model_admin.list_editable) & owned
        ]
    assert sorted(editable_anywhere) == []


def test_an_add_that_goes_through_a_service_offers_only_what_the_service_takes(superuser):
    request = superuser_request(superuser)
    beyond = []
    for model, model_admin in registered():
        parameters = service_parameters(model_admin)
        if not parameters:
            continue
        form = model_admin.get_form(request, None, change=False)
        beyond += [
            f"{model._meta.label_lower}.{name}" for name in set(form.base_fields) - parameters
        ]
    assert beyond == []
