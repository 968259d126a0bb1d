"""The options of the admin's charts (Chart.js, shipped by django-unfold): one look for
every chart of opsdesk, a left and a right axis over weeks or days."""

from __future__ import annotations

import json


def two_axis_options(*, left: dict, right: dict, x_ticks: dict | None = None) -> str:
    """Chart.js options as JSON: no animation, filling its box, the legend at the top
    right, one tooltip for all series of a point, no vertical grid lines; ``left`` and
    ``right`` are the y and y1 axes' own settings (title, bounds, ticks), the right one
    drawing no grid of its own; ``x_ticks`` adds to the x axis' ticks."""
    return json.dumps(
        {
            "animation": False,
            "responsive": True,
            "maintainAspectRatio": False,
            "layout": {"padding": {"top": 8, "right": 8}},
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {
                "legend": {
                    "display": True,
                    "align": "end",
                    "labels": {"usePointStyle": True, "boxWidth": 6, "boxHeight": 6},
                },
            },
            "scales": {
                "x": {"grid": {"display": False}, "ticks": {**(x_ticks or {}), "maxRotation": 0}},
                "y": {"beginAtZero": True, **left},
                "y1": {"position": "right", **right, "grid": {"drawOnChartArea": False}},
            },
        }
    )
