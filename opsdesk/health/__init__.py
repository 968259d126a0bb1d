"""Customer health and the daily usage digest: the flags (one rule per function), the
digest built from them, its delivery log and its tasks."""
