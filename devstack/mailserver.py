"""A private Dovecot IMAP server for the tests of the IMAP poller (docs/contracts/email.md,
Inbound: Pull): a real server, so the poller is exercised against the protocol as a
provider speaks it (UIDVALIDITY, BODY.PEEK, flags, TLS), not against a mock.

``start()`` runs Debian's ``dovecot`` (``apt-get install dovecot-imapd``) in the
foreground with a configuration of its own in a temporary directory: its own base_dir,
state_dir and log file, one passwd-file user whose mail is a maildir in that directory,
plaintext IMAP and IMAPS (a self-signed certificate made on the spot) on free ports of
127.0.0.1. Nothing outside the directory is read or written, so any number of instances
(one per pytest-xdist worker) run side by side and nothing needs root. Run as root, the
instance drops to an unprivileged account first: Dovecot refuses mail access as uid 0.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DOVECOT = os.environ.get("OPSDESK_DOVECOT", "/usr/sbin/dovecot")
INSTALL = "sudo apt-get install -y --no-install-recommends dovecot-imapd"
HOST = "127.0.0.1"
USER = "opsdesk"
# The accounts an instance started by root runs as, the first that exists.
_UNPRIVILEGED = ("dovecot", "nobody")
_START_TIMEOUT = 10.0
_PORT_ATTEMPTS = 5

_CONFIG = """\
# A private test instance (devstack/mailserver.py); nothing here is meant for production.
instance_name = opsdesk-imap-{port}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = {host}
default_login_user = {account}
default_internal_user = {account}
default_internal_group = {group}
first_valid_uid = 1
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is answered at once: no failure delay (2 s by default), and no
# growing penalty per client address (the anvil listener below is off).
auth_failure_delay = 0
ssl = yes
ssl_cert = <{dir}/cert.pem
ssl_key = <{dir}/key.pem
mail_home = {dir}/mail/%u
mail_location = maildir:~/Maildir
# Test mail: speed over durability.
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid}
}}
# chroot needs root; the login processes run as the instance's own account instead.
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {ssl_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class MailServerError(RuntimeError):
    """The test mail server is not installed or did not start; the message says why."""


@dataclass(frozen=True)
class Server:
    """A running instance: plaintext IMAP on ``port``, IMAPS on ``ssl_port``, one user."""

    host: str
    port: int
    ssl_port: int
    user: str
    password: str
    directory: Path
    process: subprocess.Popen = field(repr=False, compare=False)

    def url(self, *, ssl: bool = False, folder: str = "INBOX", password: str | None = None) -> str:
        """An ``OPSDESK_IMAP_URL`` for this server, its parts %-encoded (``password`` to
        give a wrong one)."""
        scheme, port = ("imaps", self.ssl_port) if ssl else ("imap", self.port)
        secret = quote(self.password if password is None else password, safe="")
        user, folder = quote(self.user, safe=""), quote(folder, safe="/")
        return f"{scheme}://{user}:{secret}@{self.host}:{port}/{folder}"

    @property
    def cafile(self) -> Path:
        """The self-signed certificate IMAPS presents (for 127.0.0.1 and localhost)."""
        return self.directory / "cert.pem"

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.cafile))

    def log(self) -> str:
        """Dovecot's log so far (logins, failures, errors)."""
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def installed() -> bool:
    return Path(DOVECOT).exists()


def start(
    directory: Path | None = None, *, user: str = USER, password: str | None = None
) -> Server:
    """Start an instance in ``directory`` (default: a new temporary one, removed by
    ``stop``) and return once it greets on both ports. ``MailServerError`` when Dovecot
    is missing or fails to start."""
    if not installed():
        raise MailServerError(f"Dovecot is not installed ({DOVECOT}); install it with: {INSTALL}")
    made = directory is None
    directory = Path(directory or tempfile.mkdtemp(prefix="opsdesk-imap-")).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    password = password or secrets.token_urlsafe(12)
    account = _account()
    _certificate(directory)
    (directory / "passwd").write_text(f"{user}:{{PLAIN}}{password}\n")
    for attempt in range(_PORT_ATTEMPTS):
        # Free now, but another process (another xdist worker) may take one before Dovecot
        # binds it: then Dovecot exits and the next attempt picks other ports.
        port, ssl_port = _free_ports(2)
        (directory / "dovecot.conf").write_text(
            _CONFIG.format(
                dir=directory,
                host=HOST,
                port=port,
                ssl_port=ssl_port,
                account=account.pw_name,
                group=grp.getgrgid(account.pw_gid).gr_name,
                uid=account.pw_uid,
                gid=account.pw_gid,
            )
        )
        if os.geteuid() == 0:
            _chown_tree(directory, account)
        process = _launch(directory, account)
        server = Server(HOST, port, ssl_port, user, password, directory, process)
        if _wait_until_greeting(server):
            return server
        _terminate(process)
        output = _diagnostics(directory)
        if attempt + 1 == _PORT_ATTEMPTS or "in use" not in output:
            if made:
                shutil.rmtree(directory, ignore_errors=True)
            raise MailServerError(f"Dovecot did not start:\n{output}")
    raise AssertionError("unreachable")


def stop(server: Server, *, remove: bool = True) -> None:
    """Stop the instance (its imap processes with it) and remove its directory."""
    _terminate(server.process)
    if remove:
        shutil.rmtree(server.directory, ignore_errors=True)


def _account() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in _UNPRIVILEGED:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise MailServerError(f"running as root, and none of the accounts {_UNPRIVILEGED} exists")


def _certificate(directory: Path) -> None:
    # An EC key: made in milliseconds, where RSA takes a noticeable part of a second.
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _chown_tree(directory: Path, account: pwd.struct_passwd) -> None:
    os.chown(directory, account.pw_uid, account.pw_gid)
    for path in directory.rglob("*"):
        os.chown(path, account.pw_uid, account.pw_gid)


def _launch(directory: Path, account: pwd.struct_passwd) -> subprocess.Popen:
    drop = {}
    if os.geteuid() == 0:
        drop = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    with open(directory / "stderr.log", "wb") as stderr:
        return subprocess.Popen(
            [DOVECOT, "-F", "-c", str(directory / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,  # its own process group, stopped as one by stop()
            **drop,
        )


def _greets(host: str, port: int, context: ssl.SSLContext | None) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            if context is None:
                return sock.recv(64).startswith(b"* OK")
            with context.wrap_socket(sock, server_hostname=host) as tls:
                return tls.recv(64).startswith(b"* OK")
    except OSError:
        return False


def _wait_until_greeting(server: Server) -> bool:
    context = server.ssl_context()
    deadline = time.monotonic() + _START_TIMEOUT
    pending = [(server.port, None), (server.ssl_port, context)]
    while pending:
        if server.process.poll() is not None or time.monotonic() > deadline:
            return False
        port, tls = pending[0]
        if _greets(server.host, port, tls):
            pending.pop(0)
        else:
            time.sleep(0.01)
    return True


def _terminate(process: subprocess.Popen) -> None:
    """Stop the master and its imap processes together (their own process group): a
    SIGTERM to the master alone waits about a second for its children to finish."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _diagnostics(directory: Path) -> str:
    parts = []
    for name in ("stderr.log", "dovecot.log"):
        path = directory / name
        if path.exists():
            parts.append(path.read_text(errors="replace").strip())
    return "\n".join(part for part in parts if part) or "(no output)"
