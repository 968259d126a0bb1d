"""People as pages show them: by their full name, never their username alone, and a
link to another admin page only when the person looking may open it.

- ``person_name``: "Alice Smith", else the username when no name is recorded.
- ``actor_name``: who made a history row, as every page names them: a person by their
  name, "task:… for Alice Smith" for what ran on a person's behalf, a task, command or
  webhook by its own label.
- ``staff_people``: who may be picked as an owner, an assignee or a rule's target (the
  active staff), in the order pickers list them.
- ``PeopleAutocompleteView``: the admin's autocomplete for a field naming a person. Django's
  own needs the view permission on the users' admin, which no role has; this one needs only
  the view permission on the model whose form or list asks, and offers active staff by name.
- ``admin_link`` / ``person_html``: "link if allowed, else text", the one way pages link
  to a record or a person.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

# What an empty person reads as where a name is expected.
NOBODY = "nobody"


def person_name(user) -> str:
    """A person's full name, else their username; "" for None."""
    if user is None:
        return ""
    return user.get_full_name().strip() or user.get_username()


def actor_name(label: str, user) -> str:
    """Who made a history row, from its ``history_actor`` label and ``history_user``: a
    person by their name (``person_name``), "task:… for <name>" for what ran on their
    behalf; a task, command or webhook (no user) by its label as recorded."""
    if user is None:
        return label
    username = user.get_username()
    if label == username:
        return person_name(user)
    if label.endswith(f" for {username}"):
        return label[: -len(username)] + person_name(user)
    return label


def is_person_field(field) -> bool:
    """A foreign key (or many-to-many) to the user model."""
    remote = getattr(field, "remote_field", None)
    return remote is not None and remote.model is get_user_model()


def staff_people() -> QuerySet:
    """The active staff, by first name, last name and username."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .order_by("first_name", "last_name", "username")
    )


class PeopleAutocompleteView(AutocompleteJsonView):
    """``?app_label=&model_name=&field_name=&term=`` as Django's autocomplete, for a field
    naming a person: allowed to whoever may view the model of that field's form (not the
    users' admin), answering active staff whose name, username or email holds the term,
    each as ``{"id": pk, "text": full name}``."""

    def process_request(self, request):
        term, _, source_field, to_field_name = super().process_request(request)
        if not is_person_field(source_field):
            raise PermissionDenied
        self.source_admin = self.admin_site._registry.get(source_field.model)
        if self.source_admin is None:
            raise PermissionDenied
        return term, self.source_admin, source_field, to_field_name

    def has_perm(self, request, obj=None):
        return self.source_admin.has_view_permission(request)

    def get_queryset(self):
        people = staff_people().complex_filter(self.source_field.get_limit_choices_to())
        for word in self.term.split()[:5]:
            people = people.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(username__icontains=word)
                | Q(email__icontains=word)
            )
        return people

    def serialize_result(self, obj, to_field_name):
        return {"id": str(getattr(obj, to_field_name)), "text": person_name(obj)}


def may_open(viewer, obj, *, site=None) -> bool:
    """Whether ``viewer`` may open ``obj``'s admin page (its view permission there)."""
    site = site or admin.site
    model_admin = site._registry.get(type(obj))
    if viewer is None or model_admin is None or not getattr(viewer, "is_active", False):
        return False
    # The admins' permission checks read only the request's user.
    return model_admin.has_view_permission(SimpleNamespace(user=viewer), obj)


def admin_url(obj, *, site=None) -> str:
    """``obj``'s admin change page, "" when it has none."""
    site = site or admin.site
    opts = obj._meta
    try:
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[quote(obj.pk)],
            current_app=site.name,
        )
    except NoReverseMatch:
        return ""


def admin_link(viewer, obj, text: str | None = None, *, site=None) -> SafeString:
    """``obj`` (its ``text``, else its name) linked to its admin page when ``viewer`` may
    open it, else as plain text: no link on a page leads to a refusal."""
    if text is None:
        text = person_name(obj) if isinstance(obj, get_user_model()) else str(obj)
    url = admin_url(obj, site=site) if may_open(viewer, obj, site=site) else ""
    if url:
        return format_html('<a href="{}" class="text-link">{}</a>', url, text)
    return format_html("{}", text)


def person_html(viewer, user, *, site=None) -> SafeString:
    """A person where a page names one: their name (linked to their user page when
    ``viewer`` may open it) and their email, as a mail link; "nobody" for None."""
    if user is None:
        return format_html("{}", NOBODY)
    name = admin_link(viewer, user, site=site)
    if user.email:
        mail = '{} · <a href="mailto:{}" class="text-link">{}</a>'
        return format_html(mail, name, user.email, user.email)
    return name
