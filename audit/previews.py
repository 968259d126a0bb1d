"""What a confirmation page showed, so its POST applies to exactly that (or to nothing).

A preview (GET) renders ``preview_token(state)`` in its form: ``state`` names each thing
it showed (a row, a group of rows, the target) with the values it showed. The service
that runs the POST re-reads the same things under ``select_for_update`` inside its
transaction, builds ``state`` again and asks ``preview_changes(token, state)``: anything
it returns changed since the page was opened (a double click that already ran, another
person's change), and the service refuses without changing anything.

The token is signed (``django.core.signing``, keyed by ``SECRET_KEY``) and holds a short
hash of each value, never the values: it is small and says nothing the page did not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.core import signing

SALT = "opsdesk.audit.previews"
GROUP = ""  # the one value of a group of rows


class PreviewState:
    """What a preview showed, keyed by something that does not change (a row's pk), each
    with the label a person knows it by and its values by name."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, key: str, label: str, **values: Any) -> PreviewState:
        self.items[key] = (label, values)
        return self

    def group(self, key: str, label: str, rows: Iterable[Any]) -> PreviewState:
        """One item for many rows (each a tuple of what was shown of it): its change is
        named by ``label`` alone. For previews of more rows than a form should carry."""
        return self.add(key, label, **{GROUP: [list(row) for row in rows]})

    def rows(
        self, prefix: str, rows: Iterable[Any], fields: Iterable[str], label: str = ""
    ) -> PreviewState:
        """One item per row (``prefix:pk``), labelled by ``label`` (a field) or its pk."""
        fields = list(fields)
        for row in rows:
            self.add(
                f"{prefix}:{row.pk}",
                str(getattr(row, label)) if label else f"{prefix} #{row.pk}",
                **{name: getattr(row, name) for name in fields},
            )
        return self


def _digest(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digests(state: PreviewState) -> dict[str, list]:
    return {
        key: [label, {name: _digest(value) for name, value in values.items()}]
        for key, (label, values) in state.items.items()
    }


def preview_token(state: PreviewState) -> str:
    """The token a confirmation form carries: what its preview showed."""
    return signing.dumps(_digests(state), salt=SALT, compress=True)


def _names(fields: list[str]) -> str:
    words = [name.replace("_id", "").replace("_", " ") for name in fields]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def preview_changes(token: str | None, state: PreviewState) -> list[str]:
    """What differs between the state ``token`` was made of and ``state``, one phrase per
    thing ("ABCD-EFGH: its code and customer"); ``[]`` when nothing did. A missing or
    tampered token is a change: the POST cannot show it applies to what was previewed."""
    try:
        seen: Mapping[str, list] = signing.loads(token or "", salt=SALT)
    except signing.BadSignature:
        return ["the page does not say what it previewed"]
    now = _digests(state)
    changes = []
    for key, (label, values) in seen.items():
        if key not in now:
            changes.append(f"{label} is no longer there")
            continue
        fields = [name for name, digest in values.items() if now[key][1].get(name) != digest]
        if fields == [GROUP]:
            changes.append(label)
        elif fields:
            changes.append(f"{label}: its {_names(fields)}")
    changes += [f"{label} is new" for key, (label, _) in now.items() if key not in seen]
    return changes


def stale_message(changes: list[str]) -> str:
    """The refusal a person reads: what changed, and what to do."""
    return f"This changed since you opened the preview: {'; '.join(changes)}; review it again."
