from django import template
from django.template.loader import render_to_string

from opsdesk.shell.crumbs import header_parts

register = template.Library()


@register.simple_tag(takes_context=True)
def header_trail(context) -> str:
    """The page's trail (opsdesk.shell.crumbs), in unfold's markup; ``welcomemsg.html``
    uses it in place of unfold's ``header_title``."""
    parts = header_parts(context)
    if not parts:  # the home page: unfold's welcome
        from unfold.templatetags.unfold import header_title

        return header_title(context)
    return render_to_string(
        "unfold/helpers/header_title.html", {"parts": parts}, request=context.get("request")
    )
