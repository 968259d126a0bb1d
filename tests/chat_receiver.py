"""A Slack-compatible incoming webhook on a local port, for the notification tests and
the browser walk of the service-level warnings."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PATH = "/services/T0OPSDESK/B0NOTIFY/xoxSecretToken123"


class ChatReceiver:
    """A Slack-compatible incoming webhook served over real HTTP on 127.0.0.1 from a
    thread: it records every POST (path, JSON body) and answers with the scripted
    ``answers`` in turn ((status, text), or ("hang", seconds) to answer only that late),
    then 200 "ok"."""

    secret_path = SECRET_PATH

    def __init__(self):
        self.posts: list[tuple[str, dict]] = []
        self.answers: list[tuple] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                receiver.posts.append((self.path, body))
                status, text = receiver.answers.pop(0) if receiver.answers else (200, "ok")
                if status == "hang":
                    time.sleep(text)
                    status, text = 200, "ok"
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = SECRET_PATH) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
