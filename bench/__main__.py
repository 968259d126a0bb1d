"""``python -m bench [webhooks] [health] [reconcile]`` (``make bench``): the benchmarks
named, all of them without arguments; exits non-zero when one fails. ``health`` is in
``bench.health``, ``reconcile`` in ``bench.reconcile``, ``search`` in ``bench.search``,
``crm_import`` in ``bench.crm_import``.

``webhooks``: sustained webhook intake against a bare insert. Serves opsdesk with
gunicorn (sync workers, no access log) on a free local port and loads it with ``wrk``:
first ``/bench/bare-insert/`` (one raw INSERT per request), then ``/webhooks/product/``
with distinct, freshly signed ``support.request`` deliveries, each for the same time and
connection count after a warm-up. Prints req/s, p50, p99 and the webhook/bare ratio,
writes them to ``var/bench/webhooks-<timestamp>.json``, and exits non-zero when a target
is missed or a response is not the expected one.

Database: the server of ``DATABASE_URL``, else the embedded PostgreSQL; the bench uses its
own ``opsdesk_bench`` database there. Broker: ``CELERY_BROKER_URL``, else a private
embedded Redis. No worker runs: the webhook's tasks go to the ``opsdesk-bench`` queue,
deleted at the end. Environment knobs: BENCH_SECONDS (30), BENCH_WARMUP (5),
BENCH_CONNECTIONS (16), BENCH_THREADS (wrk threads, 2), BENCH_WORKERS (2 x cores + 1).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from kombu import Connection, Exchange, Queue
from standardwebhooks.webhooks import Webhook

from bench import (
    QUEUE,
    RunFiles,
    crm_import,
    database_server,
    health,
    history,
    knob,
    pages,
    reconcile,
    report,
    say,
    search,
    testtime,
)
from bench.report import Row
from devstack import embedded
from devstack.stack import BIN, PY, ROOT, VAR, _wait_for_socket

DATABASE = "opsdesk_bench"
SECRET = "whsec_" + base64.b64encode(b"opsdesk-bench-webhook-secret").decode()
WRK_INSTALL = "sudo apt-get install -y wrk"
BARE_PATH, WEBHOOK_PATH = "/bench/bare-insert/", "/webhooks/product/"
TARGET_RATIO, TARGET_P99_MS = 0.5, 250.0
BARE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_bare_insert (
    id bigserial PRIMARY KEY,
    body text,
    received_at timestamptz DEFAULT now()
)
"""
# Every webhook request is signed before its run; the receiver accepts timestamps up to
# 5 minutes old, so one run must end well within that.
MAX_SECONDS = 240
# Signed requests generated per expected webhook request (the bare view's rate bounds it).
POOL_FACTOR = 1.5

# wrk -s bench.lua URL -- REQUESTS THREADS CYCLE IDS
# REQUESTS has one request a line: webhook-id TAB timestamp TAB signature TAB body.
# With CYCLE=0 thread i sends lines i, i+THREADS, ... once each and stops when they run
# out; with CYCLE=1 every thread sends all lines in turn. done() prints the status counts
# and writes the webhook ids answered 202 to IDS.
LUA = r"""
local threads = {}

function setup(thread)
  thread:set("number", #threads)
  table.insert(threads, thread)
end

function init(args)
  local nthreads, cycle = tonumber(args[2]), args[3] == "1"
  ids_path, wraps, exhausted, position = args[4], cycle, false, 0
  requests, statuses, accepted = {}, {}, {}
  local line_number = 0
  for line in io.lines(args[1]) do
    if cycle or line_number % nthreads == number then
      local id, timestamp, signature, body = line:match("^(.-)\t(.-)\t(.-)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = timestamp,
        ["webhook-signature"] = signature,
      }, body)
    end
    line_number = line_number + 1
  end
end

function request()
  position = position + 1
  if position > #requests then
    if not wraps then
      exhausted = true
      wrk.thread:stop()
    end
    position = 1
  end
  return requests[position]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    accepted[#accepted + 1] = body:match('"id": "([^"]*)"')
  end
end

function done(summary, latency, requests)
  local totals, exhausted_threads = {}, 0
  local ids = io.open(threads[1]:get("ids_path"), "w")
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
    for _, id in ipairs(thread:get("accepted")) do
      ids:write(id, "\n")
    end
    if thread:get("exhausted") then
      exhausted_threads = exhausted_threads + 1
    end
  end
  ids:close()
  local line = "bench statuses"
  for status, count in pairs(totals) do
    line = line .. " " .. status .. "=" .. count
  end
  print(line)
  print("bench exhausted " .. exhausted_threads)
end
"""


@dataclass(frozen=True)
class Config:
    seconds: int
    warmup: int
    connections: int
    threads: int
    workers: int
    cores: int

    @classmethod
    def from_env(cls) -> Config:
        cores = len(os.sched_getaffinity(0))
        config = cls(
            seconds=knob("BENCH_SECONDS", 30),
            warmup=knob("BENCH_WARMUP", 5),
            connections=knob("BENCH_CONNECTIONS", 16),
            threads=knob("BENCH_THREADS", 2),
            workers=knob("BENCH_WORKERS", 2 * cores + 1),
            cores=cores,
        )
        if max(config.seconds, config.warmup) > MAX_SECONDS:
            raise SystemExit(
                f"BENCH_SECONDS and BENCH_WARMUP must be at most {MAX_SECONDS}: "
                "the signed timestamps would expire during the run"
            )
        if config.threads > config.connections:
            raise SystemExit("BENCH_THREADS must not exceed BENCH_CONNECTIONS")
        return config


@dataclass
class Run:
    """One wrk run's numbers; ``statuses`` counts the responses by HTTP status."""

    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    exhausted: bool
    accepted_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    def summary(self) -> dict:
        numbers = asdict(self)
        del numbers["accepted_ids"]
        return {**numbers, "non_2xx": self.non_2xx}


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNIT_MS[unit]


def _parse_wrk(target: str, output: str, ids_path: Path) -> Run:
    """The numbers of ``wrk --latency`` plus the status counts the Lua script prints."""

    def find(pattern: str) -> re.Match:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise SystemExit(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Run(
        target=target,
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        statuses={
            int(status): int(count)
            for status, count in re.findall(r"(\d+)=(\d+)", find(r"^bench statuses(.*)$").group(1))
        },
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
        exhausted=find(r"^bench exhausted (\d+)$").group(1) != "0",
        accepted_ids=ids_path.read_text().split(),
    )


def _wrk(
    target: str, url: str, requests: Path, seconds: int, config: Config, *, cycle: bool
) -> Run:
    ids_path = requests.with_suffix(".accepted")
    script = requests.parent / "bench.lua"
    script.write_text(LUA)
    command = [
        "wrk",
        "--latency",
        "--timeout=10s",
        f"--threads={config.threads}",
        f"--connections={config.connections}",
        f"--duration={seconds}s",
        f"--script={script}",
        url,
        "--",
        str(requests),
        str(config.threads),
        "1" if cycle else "0",
        str(ids_path),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return _parse_wrk(target, output, ids_path)


def _sign_requests(path: Path, count: int) -> Path:
    """Write ``count`` ``support.request`` deliveries, each with its own id, signed now."""
    webhook = Webhook(SECRET)
    now = dt.datetime.now(dt.UTC)
    timestamp = str(int(now.timestamp()))
    with path.open("w") as out:
        for number in range(count):
            webhook_id = f"msg_bench_{uuid.uuid4().hex}"
            body = json.dumps(
                {
                    "type": "support.request",
                    "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data": {
                        "tenant_id": "bench-tenant",
                        "user": {"email": "jo@acme.com", "name": "Jo Doe"},
                        "subject": f"Cannot export CSV ({number})",
                        "message": "The export button spins forever.",
                        "category": "bug",
                        "severity": "high",
                    },
                }
            )
            signature = webhook.sign(webhook_id, now, body)
            out.write(f"{webhook_id}\t{timestamp}\t{signature}\t{body}\n")
    return path


def _bench_database(env: dict[str, str], cleanup: contextlib.ExitStack) -> None:
    """Point ``env`` at ``opsdesk_bench`` on the server of ``DATABASE_URL`` (else the
    embedded one, stopped at exit if this started it), creating the database if missing."""
    server = database_server(env, cleanup)
    with psycopg.connect(server, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    env["DATABASE_URL"] = urlsplit(server)._replace(path=f"/{DATABASE}").geturl()


def _count(database_url: str, sql: str, params: list | None = None) -> int:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def _settled_event_count(database_url: str) -> int:
    """The webhook events stored, once requests still in the workers have finished."""
    sql = "SELECT count(*) FROM support_webhookevent"
    previous = _count(database_url, sql)
    for _ in range(20):
        time.sleep(0.5)
        current = _count(database_url, sql)
        if current == previous:
            break
        previous = current
    return previous


def _delete_queue(broker_url: str) -> int:
    """Delete the bench's queue (and its binding); the number of tasks it held."""
    with Connection(broker_url) as conn:
        queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE)(conn.default_channel)
        queue.declare()
        purged = queue.purge() or 0
        queue.delete()
    return purged


def _start_broker(env: dict[str, str], cleanup: contextlib.ExitStack) -> None:
    """A private embedded Redis (never ``make run``'s), removed with all its data at exit."""
    broker_dir = Path(tempfile.mkdtemp(prefix="opsdesk-bench-redis-"))
    cleanup.callback(shutil.rmtree, broker_dir, ignore_errors=True)
    broker = subprocess.Popen(
        embedded.redis_command(broker_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    cleanup.callback(_stop, broker)
    _wait_for_socket(embedded.redis_socket(broker_dir))
    env["CELERY_BROKER_URL"] = embedded.broker_url(broker_dir)


def _stop(process: subprocess.Popen, timeout: float = 60) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(env: dict[str, str], config: Config, log: Path, cleanup: contextlib.ExitStack) -> str:
    """Start gunicorn and return its base URL once it answers ``/healthz``."""
    port = _free_port()
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "opsdesk.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                "--worker-class=sync",
                f"--workers={config.workers}",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    cleanup.callback(_stop, server)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                health = json.load(response)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"gunicorn did not answer /healthz within 60 s; see {log}"
                ) from None
            time.sleep(0.2)
    if health["broker"] != "ok":
        raise SystemExit(f"opsdesk cannot reach the broker; see {log}")
    return base


def _prepare(env: dict[str, str], cleanup: contextlib.ExitStack) -> None:
    """Database (migrated, with the bare view's table) and broker for the bench."""
    _bench_database(env, cleanup)
    if not env.get("CELERY_BROKER_URL"):
        _start_broker(env, cleanup)
    # Registered before gunicorn starts, so it runs after gunicorn has stopped.
    cleanup.callback(
        lambda: say(f"deleted the {QUEUE} queue ({_delete_queue(env['CELERY_BROKER_URL'])} tasks)")
    )
    say(f"migrating {DATABASE}")
    subprocess.run([PY, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=env, check=True)
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(BARE_TABLE)


def _measure(base: str, config: Config, workdir: Path, database_url: str) -> tuple[Run, Run, dict]:
    """Warm up and measure the bare view, then the webhook; and what the webhook stored."""
    bare_requests = _sign_requests(workdir / "bare.tsv", 1000)
    say(f"bare view: {config.warmup} s warm-up, {config.seconds} s measured")
    _wrk("bare", base + BARE_PATH, bare_requests, config.warmup, config, cycle=True)
    bare = _wrk("bare", base + BARE_PATH, bare_requests, config.seconds, config, cycle=True)

    def signed_pool(name: str, seconds: int) -> Path:
        # The bare view's rate bounds the webhook's; the Lua script reports running out.
        count = math.ceil(bare.requests_per_second * seconds * POOL_FACTOR) + 100
        return _sign_requests(workdir / f"{name}.tsv", count)

    url = base + WEBHOOK_PATH
    say(f"webhook: {config.warmup} s warm-up, {config.seconds} s measured")
    _wrk("webhook", url, signed_pool("warmup", config.warmup), config.warmup, config, cycle=False)
    requests = signed_pool("webhook", config.seconds)
    before = _settled_event_count(database_url)
    webhook = _wrk("webhook", url, requests, config.seconds, config, cycle=False)
    ids = webhook.accepted_ids
    stored = {
        "answered_202": webhook.statuses.get(202, 0),
        "distinct_ids_answered_202": len(set(ids)),
        "of_those_stored": _count(
            database_url,
            "SELECT count(*) FROM support_webhookevent WHERE webhook_id = ANY(%s)",
            [ids],
        ),
        # Also counts requests in flight when wrk stopped: the workers still store them.
        "stored_during_run": _settled_event_count(database_url) - before,
    }
    return bare, webhook, stored


def _failures(bare: Run, webhook: Run, stored: dict, config: Config) -> list[str]:
    failures = []
    for run, expected in ((bare, 204), (webhook, 202)):
        unexpected = {status: n for status, n in run.statuses.items() if status != expected}
        if unexpected or run.socket_errors:
            failures.append(
                f"{run.target}: responses other than {expected}: {unexpected or 'none'}, "
                f"socket errors: {run.socket_errors}"
            )
    if webhook.exhausted:
        failures.append("webhook: ran out of signed requests (faster than the pool allows)")
    in_flight = stored["stored_during_run"] - stored["answered_202"]
    if not (
        stored["answered_202"] == stored["distinct_ids_answered_202"] == stored["of_those_stored"]
        and 0 <= in_flight <= config.connections
    ):
        failures.append(f"webhook: stored events do not match the 202 responses: {stored}")
    if webhook.requests_per_second < TARGET_RATIO * bare.requests_per_second:
        failures.append(f"webhook throughput below {TARGET_RATIO:.2f} of the bare view's")
    if webhook.p99_ms >= TARGET_P99_MS:
        failures.append(f"webhook p99 not under {TARGET_P99_MS:.0f} ms")
    return failures


def _report(bare: Run, webhook: Run, stored: dict) -> float:
    print(f"{'target':<10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-2xx':>10}{'errors':>8}")
    for run in (bare, webhook):
        print(
            f"{run.target:<10}{run.requests_per_second:>10.1f}{run.p50_ms:>10.1f}"
            f"{run.p99_ms:>10.1f}{run.non_2xx:>10}{run.socket_errors:>8}"
        )
    ratio = webhook.requests_per_second / (bare.requests_per_second or math.inf)
    print(
        f"ratio webhook/bare = {ratio:.2f} (target >= {TARGET_RATIO:.2f}); "
        f"webhook p99 = {webhook.p99_ms:.0f} ms (target < {TARGET_P99_MS:.0f} ms)"
    )
    print(
        f"webhook events stored: {stored['of_those_stored']} of the "
        f"{stored['answered_202']} answered 202 (distinct ids: "
        f"{stored['distinct_ids_answered_202']}), plus "
        f"{stored['stored_during_run'] - stored['answered_202']} in flight when wrk stopped"
    )
    return ratio


def webhooks() -> list[Row]:
    if shutil.which("wrk") is None:
        say(f"wrk is not installed; install it with: {WRK_INSTALL}")
        return [Row.failed("webhooks", f"wrk is not installed ({WRK_INSTALL})")]
    config = Config.from_env()
    files = RunFiles("webhooks")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "opsdesk-bench-only-secret-key-not-for-production-use-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on localhost
        "OPSDESK_WEBHOOK_SECRETS": SECRET,
    }
    services = {
        name: "external" if env.get(variable) else "embedded"
        for name, variable in (("database", "DATABASE_URL"), ("broker", "CELERY_BROKER_URL"))
    }
    log = files.path(".log")
    with contextlib.ExitStack() as cleanup:
        _prepare(env, cleanup)
        workdir = Path(tempfile.mkdtemp(prefix="opsdesk-bench-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        base = _serve(env, config, log, cleanup)
        say(
            f"gunicorn: {config.workers} sync workers on {config.cores} cores (log: {log}); "
            f"wrk: {config.threads} threads, {config.connections} connections"
        )
        bare, webhook, stored = _measure(base, config, workdir, env["DATABASE_URL"])

    ratio = _report(bare, webhook, stored)
    failures = _failures(bare, webhook, stored, config)
    for failure in failures:
        say(f"FAILED: {failure}")
    result = {
        "timestamp": files.stamp,
        "config": asdict(config),
        "services": services,
        "runs": [bare.summary(), webhook.summary()],
        "ratio": round(ratio, 3),
        "targets": {"ratio_min": TARGET_RATIO, "webhook_p99_ms_max": TARGET_P99_MS},
        "stored": stored,
        "failures": failures,
    }
    files.write_results(result)
    rows = [
        Row.held(
            "webhooks", "intake throughput", f"{webhook.requests_per_second:.0f} req/s",
            f"{bare.requests_per_second:.0f} req/s (bare insert view)", ratio, TARGET_RATIO,
            at_least=True,
        ),
        Row.check(
            "webhooks", "intake p99 latency", f"{webhook.p99_ms:.0f} ms "
            f"(bare {bare.p99_ms:.0f} ms)", webhook.p99_ms < TARGET_P99_MS,
            f"< {TARGET_P99_MS:.0f} ms",
        ),
    ]  # fmt: skip
    held = ("throughput below", "p99 not under")
    return rows + [Row.failed("webhooks", f) for f in failures if not any(h in f for h in held)]


BENCHMARKS = {
    "webhooks": webhooks,
    "health": health.main,
    "reconcile": reconcile.main,
    "pages": pages.main,
    "search": search.main,
    "history": history.main,
    "crm_import": crm_import.main,
    "testtime": testtime.main,
}


def main(names: list[str]) -> int:
    unknown = set(names) - BENCHMARKS.keys()
    if unknown:
        raise SystemExit(
            f"unknown benchmark {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill, too
    rows: list[Row] = []
    started = time.monotonic()
    for name in names or BENCHMARKS:
        say(f"--- {name}")
        try:
            rows += BENCHMARKS[name]()
        except Exception as error:  # one broken benchmark still leaves the others' report
            traceback.print_exc()
            rows.append(Row.failed(name, f"{type(error).__name__}: {error}"))
        except SystemExit as error:
            rows.append(Row.failed(name, f"stopped: {error}"))
    text, path = report.write(
        rows,
        VAR / "bench",
        extra={"benchmarks": names or list(BENCHMARKS), "seconds": time.monotonic() - started},
    )
    print()
    print(text)
    say(f"report in {path} (and {path.with_suffix('.json').name})")
    return 1 if any(row.met is False for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
