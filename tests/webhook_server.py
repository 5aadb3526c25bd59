"""A real HTTP(S) server in the test process that receives webhooks, checks their Standard
Webhooks signatures with the `standardwebhooks` library, and plays planned faults.

    with webhook_server(secret) as server:                 # tls=TlsFiles for HTTPS
        server.plan("/interpol", ["503:1", "ok"])  # 1st attempt: 503, Retry-After 1; then 200
        url = server.url("/interpol")
        ...
        server.received       # [Received(path, headers, body, verified, error, at)] in order
        server.bodies("/interpol")

A request whose signature does not verify is answered 401, as a partner would. Otherwise
a fault is played once, for one request to its path (the default when none is planned):

    "ok"                   200
    "500", "400", ...      that status, with a short JSON reply
    "503:2"                503 with Retry-After: 2 (delay-seconds)
    "503:date:2"           503 with Retry-After: an HTTP-date 2 s from now
    "slow:1.5"             wait 1.5 s, then 200
    "hang:5"               wait 5 s, then 200 (longer than the client's timeout)
    "drop"                 close the connection without answering
"""

from __future__ import annotations

import datetime as dt
import email.utils
import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    at: float  # time.monotonic() when it arrived


class WebhookServer:
    def __init__(self, secret: str | bytes | None, default: str = "ok") -> None:
        self._verifier = Webhook(secret) if secret is not None else None
        self.default = default
        self._plans: dict[str, deque[str]] = defaultdict(deque)
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.scheme = "http"

    def plan(self, path: str, faults: list[str]) -> None:
        with self._lock:
            self._plans[path].extend(faults)

    def url(self, path: str = "/hook") -> str:
        assert self.httpd is not None
        return f"{self.scheme}://{HOST}:{self.httpd.server_address[1]}{path}"

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def bodies(self, path: str) -> list[bytes]:
        return [r.body for r in self.received if r.path == path]

    def _arrived(self, received: Received) -> str:
        with self._lock:
            self._received.append(received)
            plan = self._plans[received.path]
            return plan.popleft() if plan else self.default

    def _verify(self, body: bytes, headers: dict[str, str]) -> str | None:
        if self._verifier is None:
            return None
        try:
            self._verifier.verify(body, headers)
        except Exception as exc:  # the library's WebhookVerificationError, or bad headers
            return f"{type(exc).__name__}: {exc}"
        return None


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            error = server._verify(body, headers)
            fault = server._arrived(
                Received(self.path, headers, body, error is None, error, time.monotonic())
            )
            if error is not None:
                self._answer(401, b'{"error": "invalid signature"}')
                return
            self._play(fault)

        def _play(self, fault: str) -> None:
            kind, _, arg = fault.partition(":")
            if kind == "ok":
                self._answer(200, b'{"ok": true}')
            elif kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif kind in ("slow", "hang"):
                time.sleep(float(arg))
                self._answer(200, b'{"ok": true}')
            else:
                extra = {}
                if arg.startswith("date:"):
                    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(arg[5:]))
                    extra["Retry-After"] = email.utils.format_datetime(when, usegmt=True)
                elif arg:
                    extra["Retry-After"] = arg
                reply = f'{{"error": "planned {kind}", "detail": "the test said so"}}'.encode()
                self._answer(int(kind), reply, extra)

        def _answer(self, status: int, body: bytes, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def webhook_server(
    secret: str | bytes | None = None, *, default: str = "ok", tls=None
) -> Iterator[WebhookServer]:
    """A running server on 127.0.0.1 (a free port); `tls` (a TlsFiles) makes it HTTPS."""
    server = WebhookServer(secret, default)
    httpd = ThreadingHTTPServer((HOST, 0), _handler(server))
    httpd.daemon_threads = True
    httpd.block_on_close = False  # a "hang" must not hold up the test's end
    if tls is not None:
        context: ssl.SSLContext = tls.server_context()
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        server.scheme = "https"
    server.httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    return f"http://{HOST}:{port}/hook"
