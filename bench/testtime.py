"""``python -m bench testtime``: the wall time of ``make test`` (target: under 5 minutes).

Runs ``python -m devstack test`` (what ``make test`` runs: ruff, the migrations and
deploy checks, then the whole pytest suite, browser tests included) with ``CI=true`` in a
temporary copy of the source: the working tree's files (tracked and untracked, minus the
ignored ones) by default, or the committed ``HEAD`` with BENCH_TESTTIME_SOURCE=head. The
copy uses this checkout's virtualenv, its own test databases (``test_opsdesk_bench_
testtime``...) on the server of ``DATABASE_URL`` and a private Redis (the runner starts
one when REDIS_URL is unset). The copy is removed afterwards; the run's output is kept in
``var/bench/testtime-<timestamp>.log``. A failing suite is reported as such: its time
does not count as met.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench import RunFiles, database_server, say
from bench.report import Row
from devstack.stack import PY, ROOT

TARGET_SECONDS = 300
DATABASE = "opsdesk_bench_testtime"


def _copy_source(into: Path, source: str) -> None:
    """The working tree's files (or ``HEAD``'s) under ``into``."""
    if source == "head":
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (item.decode() for item in listed)):
        path = ROOT / name
        if path.is_file():  # a deleted file is still listed until the change is committed
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, into / name)


def main() -> list[Row]:
    source = os.environ.get("BENCH_TESTTIME_SOURCE", "worktree")
    if source not in ("worktree", "head"):
        raise SystemExit("BENCH_TESTTIME_SOURCE must be worktree or head")
    files = RunFiles("testtime")
    log = files.path(".log")
    env = dict(os.environ)
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    with contextlib.ExitStack() as cleanup:
        database_server(env, cleanup)
        workdir = Path(tempfile.mkdtemp(prefix="opsdesk-testtime-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        _copy_source(workdir, source)
        env.update(
            CI="true",
            DATABASE_URL=urlsplit(env["DATABASE_URL"])._replace(path=f"/{DATABASE}").geturl(),
            OPSDESK_VAR_DIR=str(workdir / "var"),
        )
        say(f"make test in a copy of the {source} ({workdir}); output in {log}")
        started = time.monotonic()
        with log.open("w") as output:
            code = subprocess.run(
                [PY, "-m", "devstack", "test"],
                cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT,
            ).returncode  # fmt: skip
        seconds = time.monotonic() - started
    lines = log.read_text().splitlines()
    summary = [line for line in lines if " in " in line and line.startswith("=")]
    steps = [line.removeprefix("opsdesk | ") for line in lines if line.startswith("opsdesk | ")]
    if summary:
        outcome = summary[-1].strip("= ")
    elif code:
        outcome = f"failed at {steps[-1] if steps else 'start'}, exit code {code}"
    else:
        outcome = "passed"
    say(f"make test: {seconds:.0f} s, {outcome}")
    files.write_results(
        {"timestamp": files.stamp, "source": source, "seconds": round(seconds, 1),
         "exit_code": code, "outcome": outcome, "target_seconds": TARGET_SECONDS}
    )  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    row = Row.held(
        "testtime", f"make test wall time ({source}, {cores} cores)",
        f"{seconds:.0f} s ({outcome})", f"{TARGET_SECONDS} s target", seconds / TARGET_SECONDS,
        1.0,
    )  # fmt: skip
    if code:
        row.met = False
    return [row]
