"""The one report of ``make bench``: every benchmark's measurements next to their
references, as a markdown table printed at the end and written to
``var/bench/report-<timestamp>.md`` (and ``.json``)."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    """One line of the report. ``ratio`` is measured over reference (None when the
    measurement has no reference); ``met`` is None for a figure reported, not held to a
    target."""

    bench: str
    name: str
    measured: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None

    @classmethod
    def held(
        cls, bench: str, name: str, measured: str, reference: str, ratio: float, target: float,
        *, at_least: bool = False,
    ) -> Row:  # fmt: skip
        """A ratio held to ``target``: at most (default) or ``at_least``."""
        met = ratio >= target if at_least else ratio <= target
        return cls(
            bench, name, measured, reference, ratio,
            f"{'≥' if at_least else '≤'} {target:g}", met and math.isfinite(ratio),
        )  # fmt: skip

    @classmethod
    def check(cls, bench: str, name: str, measured: str, ok: bool, target: str) -> Row:
        """A pass/fail check without a reference (agreement, query counts...)."""
        return cls(bench, name, measured, "", None, target, ok)

    @classmethod
    def failed(cls, bench: str, message: str) -> Row:
        return cls(bench, "FAILED", message, "", None, "", False)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[Row], *, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        "| bench | measurement | measured | reference | ratio | target | met |",
        "|---|---|---|---|--:|---|---|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "**NO**", None: ""}[row.met]
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (row.bench, row.name, row.measured, row.reference, ratio, row.target, met)
            )
            + " |"
        )
    missed = sum(row.met is False for row in rows)
    held = sum(row.met is not None for row in rows)
    summary = f"{held - missed} of {held} targets met" + (f"; {missed} missed" if missed else "")
    lines += ["", summary]
    return "\n".join(lines) + "\n"


def write(rows: list[Row], out_dir: Path, *, extra: dict) -> tuple[str, Path]:
    """The markdown report and the path it was written to (the JSON next to it)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = markdown(rows, title=f"opsdesk bench {stamp}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"report-{stamp}.md"
    path.write_text(text)
    path.with_suffix(".json").write_text(
        json.dumps({"timestamp": stamp, **extra, "rows": [asdict(r) for r in rows]}, indent=2)
        + "\n"
    )
    return text, path
