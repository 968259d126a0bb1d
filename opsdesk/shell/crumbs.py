"""The trail at the top of every admin page ("Support > Tickets > ord_f961a502").

Unfold's own trail names a custom page by the model it hangs under ("Customers >
Customers" on the audit log, which lives under the customer list's URLs) and capitalises
every part, ids included ("Ord_f961a502"). Here:

- a page of the sidebar that is not a model's list (the queue, the inbox, the audit log)
  is its section and its sidebar title: "Audit > Audit log";
- a model's pages are its app, its list and the record, the record as it names itself
  (never capitalised: ids keep their case), then the page's own title when the page is
  none of the model's own (a customer's timeline, a resolution page, "Add tag");
- an app whose name is its model's ("Customers > Customers") is named once.
"""

from __future__ import annotations

from django.db.models import Model
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst

from opsdesk.shell.admin_site import SIDEBAR

# The model pages whose title the trail already says (the list, the record, its history).
OWN_PAGES = ("changelist", "change", "history", "delete")


def _custom_pages() -> dict[str, tuple[str, str]]:
    """View name of each sidebar page that is not a model's list -> (section, title)."""
    pages = {}
    for section, entries in SIDEBAR:
        for title, _icon, app_label, model_name, *view in entries:
            if view:  # "scorecard:page" is a view name of its own
                name = view[0] if ":" in view[0] else f"admin:{app_label}_{model_name}_{view[0]}"
                pages[name] = (section, title)
    return pages


def header_parts(context) -> list[dict]:
    """The parts of the trail: ``{"title": ..., "link": ...}``, the link optional."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    url_name = (match.url_name or "") if match else ""
    if match and match.view_name in _custom_pages():
        section, title = _custom_pages()[match.view_name]
        return [{"title": section}, {"title": title, "link": request.path}]

    opts = context.get("opts")
    if opts is None and (model_admin := context.get("model_admin")) is not None:
        opts = getattr(getattr(model_admin, "model", None), "_meta", None)
    record = context.get("original") or context.get("object")
    if opts is None and isinstance(record, Model):
        opts = record._meta
    parts = []
    if opts is not None:
        app_name = capfirst(opts.app_config.verbose_name)
        plural = capfirst(opts.verbose_name_plural)
        if app_name.lower() != plural.lower():
            parts.append({"title": app_name, "link": _url("app_list", opts.app_label)})
        parts.append(
            {"title": plural, "link": _url(f"{opts.app_label}_{opts.model_name}_changelist")}
        )
        if isinstance(record, Model) and record.pk is not None:
            parts.append(
                {
                    "title": str(record),
                    "link": _url(f"{opts.app_label}_{opts.model_name}_change", record.pk),
                }
            )
        title = context.get("title")
        known = {part["title"].lower() for part in parts}
        if title and not url_name.endswith(OWN_PAGES) and str(title).lower() not in known:
            parts.append({"title": capfirst(str(title))})
    elif title := context.get("content_title") or context.get("title"):
        parts.append({"title": capfirst(str(title))})
    return parts


def _url(name: str, *args) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None
