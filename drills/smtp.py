"""The drills' mail server: aiosmtpd on a loopback port, which the mail-down drill takes
down (connection refused), hangs (a socket that accepts and never says a word) and
brings back, always on the same port. Every message it receives is kept, so a drill can
count the copies of each one."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
import time
from dataclasses import dataclass

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic()
    recipients: tuple[str, ...]
    message: email.message.EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message.get("Message-ID", "")).strip()

    def text(self) -> str:
        """The plain-text part."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.received.append(
                Received(time.monotonic(), tuple(envelope.rcpt_tos), message)
            )
        return "250 Message accepted for delivery"


class _Hanging(threading.Thread):
    """Accepts every connection and never answers: an SMTP client waits for a greeting
    that does not come. Records how long each client held on before hanging up."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True, name="drills-smtp-hanging")
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.held: list[tuple[socket.socket, float]] = []
        self.hung_up: list[float] = []  # seconds each client waited before closing

    def run(self) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                connection, _ = self.listener.accept()
                connection.setblocking(False)
                self.held.append((connection, time.monotonic()))
            for connection, since in list(self.held):
                try:
                    closed = connection.recv(4096) == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if closed:
                    self.hung_up.append(time.monotonic() - since)
                    self.held.remove((connection, since))
                    connection.close()

    def stop(self) -> int:
        """Close the listener and every connection still held; how many were."""
        self.stopping.set()
        self.join()
        self.listener.close()
        still = len(self.held)
        for connection, _ in self.held:
            connection.close()
        self.held.clear()
        return still


class SmtpServer:
    """``healthy`` (aiosmtpd), ``down`` (nothing listens) or ``hanging``, on one port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.mode = "down"
        self._controller: Controller | None = None
        self._hanging: _Hanging | None = None
        self.hanging_connections = 0
        self.hanging_waits: list[float] = []
        self.left_hanging = 0

    def _stop_current(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._hanging is not None:
            self.left_hanging += self._hanging.stop()
            self.hanging_waits += self._hanging.hung_up
            self.hanging_connections += len(self._hanging.hung_up)
            self._hanging = None

    def healthy(self) -> None:
        self._stop_current()
        deadline = time.monotonic() + 10
        while True:
            controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
            try:
                controller.start()
                break
            except (OSError, RuntimeError):  # the port is still being released
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self._controller = controller
        self.mode = "healthy"

    def down(self) -> None:
        self._stop_current()
        self.mode = "down"

    def hanging(self) -> None:
        self._stop_current()
        self._hanging = _Hanging(self.port)
        self._hanging.start()
        self.mode = "hanging"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self._stop_current()
