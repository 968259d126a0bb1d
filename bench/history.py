"""``python -m bench history``: what the audit history costs a service write.

On the large demo database (``bench.dataset``), the same service write, a ticket's
priority set through ``support.tickets.ticket_set_priority`` (lock, update, commit), is
run BENCH_HISTORY_RUNS times with simple-history on (one history row per change, with
the actor) and as many times with it off (``SIMPLE_HISTORY_ENABLED = False``: the same
function, no history row), in alternating rounds so whatever else loads the machine
weighs on both. Each call commits (its own transaction); the priority alternates between
two values, so every call is a change. Median and p95 per write; queries per write.

Target: with history at most 2x without. A change with history is the same statement
plus one ``INSERT`` of the row's copy into the history table (and its indexes) in the
same transaction; the lock, the update and the commit (a WAL flush) are paid either
way. Twice the cost would mean the history costs a whole write of its own, more than one
indexed insert into an append-only table should: a sign of extra queries (signals,
lookups) per change.

The writes are real: the ticket's history gains a row per call with history on,
attributed ``bench:history``. Knobs: BENCH_HISTORY_RUNS (200), and ``bench.dataset``'s.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time

from bench import RunFiles, database_server, dataset, knob, say
from bench.report import Row

TARGET_RATIO = 2.0
ACTOR = "bench:history"


def _p95(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _measure(runs: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from audit.context import acting_as
    from support.models import Ticket
    from support.tickets import ticket_set_priority

    ticket = Ticket.objects.filter(status=Ticket.Status.OPEN).order_by("-pk").first()
    # Each call sets the other value than the last one: every call is a change.
    priorities = ["normal", "high"] if ticket.priority == "high" else ["high", "normal"]
    calls = 0
    history = Ticket.history.model
    seconds: dict[str, list[float]] = {"with history": [], "without history": []}
    queries: dict[str, int] = {}
    settings_for = {"with history": True, "without history": False}
    rows_before = history.objects.filter(id=ticket.pk).count()
    with acting_as(ACTOR):
        for number in range(runs + 1):  # the first round warms up, counted
            for name, enabled in settings_for.items():
                priority = priorities[calls % 2]
                calls += 1
                with override_settings(SIMPLE_HISTORY_ENABLED=enabled):
                    if number == 0:
                        with CaptureQueriesContext(connection) as captured:
                            ticket_set_priority(ticket=ticket, priority=priority, by=None)
                        queries[name] = len(captured)
                        continue
                    started = time.perf_counter()
                    ticket_set_priority(ticket=ticket, priority=priority, by=None)
                    seconds[name].append(time.perf_counter() - started)
    rows_written = history.objects.filter(id=ticket.pk).count() - rows_before
    return {
        "ticket": ticket.pk,
        "seconds": seconds,
        "queries": queries,
        "history_rows_written": rows_written,
    }


def main() -> list[Row]:
    runs = knob("BENCH_HISTORY_RUNS", 200)
    files = RunFiles("history")
    env = dict(os.environ)
    with contextlib.ExitStack() as cleanup:
        big = dataset.prepare(database_server(env, cleanup), dataset.large())
        dataset.use(big["url"])
        from django.db import connections

        cleanup.callback(connections.close_all)
        say(f"history: {runs} writes with history and {runs} without, alternating")
        measured = _measure(runs)

    on, off = measured["seconds"]["with history"], measured["seconds"]["without history"]
    ratio = statistics.median(on) / statistics.median(off)
    q_on, q_off = measured["queries"]["with history"], measured["queries"]["without history"]
    print(
        f"ticket_set_priority: with history median {statistics.median(on) * 1000:.2f} ms "
        f"(p95 {_p95(on) * 1000:.2f}, {q_on} queries), without {statistics.median(off) * 1000:.2f}"
        f" ms (p95 {_p95(off) * 1000:.2f}, {q_off} queries): ratio {ratio:.2f}"
    )
    expected_rows = runs + 1  # the counted warm-up wrote one too
    result = {
        "timestamp": files.stamp,
        "runs": runs,
        **measured,
        "median_ms": {
            name: round(statistics.median(values) * 1000, 3)
            for name, values in measured["seconds"].items()
        },
        "ratio": round(ratio, 3),
        "target_ratio_max": TARGET_RATIO,
    }
    files.write_results(result)
    return [
        Row.held(
            "history", "ticket_set_priority with history",
            f"{statistics.median(on) * 1000:.2f} ms, p95 {_p95(on) * 1000:.2f}, {q_on} q",
            f"{statistics.median(off) * 1000:.2f} ms, p95 {_p95(off) * 1000:.2f}, {q_off} q "
            "(history off)",
            ratio, TARGET_RATIO,
        ),
        Row.check(
            "history", "history rows written",
            f"{measured['history_rows_written']} for {expected_rows} writes with history "
            f"(none for the {runs + 1} without)",
            measured["history_rows_written"] == expected_rows, "one per write with history",
        ),
    ]  # fmt: skip
