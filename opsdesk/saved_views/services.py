"""Every change to a saved view: save one from a page, change it, delete it.

Who may do what (docs/product.md#saved-views):

- anyone who sees a page and holds ``opsdesk.add_savedview`` saves personal views of it;
- sharing a view of a page is for who works that page (``ViewPage.share_permission``:
  support for the queue, ops leads for the inbox) and for who holds
  ``opsdesk.manage_shared_savedview`` (ops leads);
- a view is changed or deleted by its owner, and a shared one also by who holds
  ``opsdesk.manage_shared_savedview``; nobody else even sees another's personal view.

Each function runs in one transaction, checks the person first and leaves history naming
them with a reason; a refusal raises ``SavedViewError`` and changes nothing.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from audit.context import acting_as_user
from kit.text import one_line
from opsdesk.saved_views.models import SavedView
from opsdesk.saved_views.pages import SavedViewError, ViewPage, page_of, query_clean

ADD = "opsdesk.add_savedview"
CHANGE = "opsdesk.change_savedview"
DELETE = "opsdesk.delete_savedview"
MANAGE_SHARED = "opsdesk.manage_shared_savedview"
NAME_MAX_LENGTH = SavedView._meta.get_field("name").max_length
# Views one person keeps of one page; the page lists them all.
VIEWS_PER_PAGE_MAX = 30
POSITION_MAX = 32_767

__all__ = [
    "SavedViewError",
    "may_share",
    "saved_view_delete",
    "saved_view_may_change",
    "saved_view_save",
    "saved_view_update",
    "view_name_clean",
]


def _active(by: AbstractBaseUser) -> None:
    if by is None or not by.is_active or not by.is_staff:
        raise SavedViewError("Only active staff keep saved views.")


def _require(by: AbstractBaseUser, permission: str) -> None:
    if not by.has_perm(permission):
        raise SavedViewError(f"You may not do this: it needs the permission {permission}.")


def may_share(user: AbstractBaseUser, page: ViewPage) -> bool:
    """Whether ``user`` may share views of ``page`` with everyone who sees it."""
    return user.is_active and (user.has_perm(page.share_permission) or user.has_perm(MANAGE_SHARED))


def saved_view_may_change(user: AbstractBaseUser, view: SavedView) -> bool:
    """The owner changes and deletes their view; a shared one, also who manages shared
    views (ops leads, superusers)."""
    if not user.is_active:
        return False
    return view.owner_id == user.pk or (view.shared and user.has_perm(MANAGE_SHARED))


def view_name_clean(name: str) -> str:
    """A view's name as stored: one line, 1 to 60 characters."""
    name = one_line(name or "")
    if not name:
        raise SavedViewError("Give the view a name.")
    if len(name) > NAME_MAX_LENGTH:
        raise SavedViewError(f"A view's name is at most {NAME_MAX_LENGTH} characters long.")
    return name


def _position(position: int) -> int:
    if isinstance(position, bool) or not isinstance(position, int):
        raise SavedViewError("A position is a whole number.")
    if not 0 <= position <= POSITION_MAX:
        raise SavedViewError(f"A position is from 0 to {POSITION_MAX}.")
    return position


def _name_taken(*, owner, page: str, name: str, exclude: int | None = None) -> bool:
    views = SavedView.objects.filter(owner=owner, page=page, name__iexact=name)
    return views.exclude(pk=exclude).exists() if exclude else views.exists()


def _taken_message(name: str, page: ViewPage) -> str:
    return f"You have a view named “{name}” of {page.label} already: pick another name."


def saved_view_save(
    *, by: AbstractBaseUser, page: str, name: str, query: str, shared: bool = False
) -> SavedView:
    """Save ``query`` (the page's filters, validated and normalised by ``query_clean``) as
    ``by``'s view ``name`` of ``page``, last of their views of it; shared when asked and
    allowed. A second view of the same name on the same page is refused (whatever its
    case), as is a 31st view of one page."""
    _active(by)
    _require(by, ADD)
    view_page = page_of(page)
    _require(by, view_page.view_permission)
    if shared and not may_share(by, view_page):
        raise SavedViewError(
            f"Only who works {view_page.label} shares views of it: save it for yourself."
        )
    name = view_name_clean(name)
    query = query_clean(view_page, query)
    with transaction.atomic(), acting_as_user(by, reason="saved view saved"):
        # One save at a time per person (their user row locked): two saves at once cannot
        # both pass the checks below; the second reads what the first saved.
        list(get_user_model().objects.select_for_update().filter(pk=by.pk).values_list("pk"))
        mine = SavedView.objects.filter(owner=by, page=page)
        taken = list(mine.values_list("name", "position"))
        if len(taken) >= VIEWS_PER_PAGE_MAX:
            raise SavedViewError(
                f"You keep {VIEWS_PER_PAGE_MAX} views of {view_page.label} already: "
                "delete one first."
            )
        if any(existing.casefold() == name.casefold() for existing, _ in taken):
            raise SavedViewError(_taken_message(name, view_page))
        last = max((position for _, position in taken), default=-1)
        try:
            with transaction.atomic():
                return SavedView.objects.create(
                    owner=by,
                    page=page,
                    name=name,
                    query=query,
                    shared=bool(shared),
                    position=min(last + 1, POSITION_MAX),
                )
        except IntegrityError:  # the unique constraint, should the lock ever be missed
            raise SavedViewError(_taken_message(name, view_page)) from None


def saved_view_update(*, view: SavedView, by: AbstractBaseUser, **changes) -> list[str]:
    """Change ``view``'s ``name``, ``query`` (validated against its page as on saving),
    ``shared`` and ``position``; only those given. Who may: see the module. Returns what
    changed, in words, empty when nothing did (and then writes nothing)."""
    unknown = set(changes) - {"name", "query", "shared", "position"}
    if unknown:
        raise SavedViewError(f"A view has no {', '.join(sorted(unknown))} to change.")
    _active(by)
    _require(by, CHANGE)
    view_page = page_of(view.page)
    cleaned = {}
    if "name" in changes:
        cleaned["name"] = view_name_clean(changes["name"])
    if "query" in changes:
        cleaned["query"] = query_clean(view_page, changes["query"])
    if "shared" in changes:
        cleaned["shared"] = bool(changes["shared"])
    if "position" in changes:
        cleaned["position"] = _position(changes["position"])
    with transaction.atomic(), acting_as_user(by, reason="saved view changed"):
        view = SavedView.objects.select_for_update().get(pk=view.pk)
        if not saved_view_may_change(by, view):
            raise SavedViewError(_not_yours(view))
        if cleaned.get("shared") and not view.shared and not may_share(by, view_page):
            raise SavedViewError(f"Only who works {view_page.label} shares views of it.")
        changed = [name for name, value in cleaned.items() if getattr(view, name) != value]
        if "name" in changed and _name_taken(
            owner=view.owner_id, page=view.page, name=cleaned["name"], exclude=view.pk
        ):
            raise SavedViewError(_taken_message(cleaned["name"], view_page))
        if not changed:
            return []
        for name in changed:
            setattr(view, name, cleaned[name])
        try:
            with transaction.atomic():
                view.save(update_fields=[*changed, "updated_at"])
        except IntegrityError:
            raise SavedViewError(_taken_message(cleaned["name"], view_page)) from None
    return [_said(name, view) for name in changed]


def _said(field: str, view: SavedView) -> str:
    if field == "shared":
        return "shared" if view.shared else "no longer shared"
    return {"name": "renamed", "query": "filters changed", "position": "moved"}[field]


def _not_yours(view: SavedView) -> str:
    if view.shared:
        return "Only its owner or an ops lead changes a shared view."
    return "Only its owner changes a personal view."


def saved_view_delete(*, view: SavedView, by: AbstractBaseUser) -> None:
    """Delete ``view`` (its history stays). Who may: see the module."""
    _active(by)
    _require(by, DELETE)
    with transaction.atomic(), acting_as_user(by, reason="saved view deleted"):
        view = SavedView.objects.select_for_update().filter(pk=view.pk).first()
        if view is None:
            return  # deleted meanwhile: the effect asked for
        if not saved_view_may_change(by, view):
            raise SavedViewError(_not_yours(view))
        view.delete()
