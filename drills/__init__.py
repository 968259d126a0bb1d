"""``make drills``: fault drills against the real stack (``python -m drills [name ...]``).

``drills.stack`` brings up PostgreSQL (a fresh ``opsdesk_drills`` database), its own
redis-server, gunicorn, a Celery worker and beat with the production settings; each
drill module breaks something and checks what the app promised (``contracts/``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def say(message: str) -> None:
    print(f"drills | {message}", flush=True)


@dataclass
class Checks:
    """What a drill verified: each check printed as it is made, failures kept."""

    drill: str
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> bool:
        print(f"  [{'ok' if ok else 'FAILED'}] {what}", flush=True)
        if not ok:
            self.failures.append(f"{self.drill}: {what}")
        return ok
