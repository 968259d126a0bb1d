"""Running work at the same moment from several threads, as several people clicking at once."""

from __future__ import annotations

import threading

from django.db import connection
from django.test import Client


def at_once(count: int, work) -> list:
    """Run ``work(i)`` in ``count`` threads released together, each on its own database
    connection; their results (or exceptions) in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def signed_in(user) -> Client:
    """A client of its own signed in as ``user`` (one per simultaneous person)."""
    client = Client()
    client.force_login(user)
    return client
