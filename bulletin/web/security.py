"""Guards every answer of the web service: security headers, rate limits, and tokens kept
out of the access log.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_PATH = re.compile(r"/(unsubscribe|confirm|preferences)/[^/?#\s]+")


CSP = (
    "default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class RateLimit:
    """At most `limit` events per key in a sliding `window` of seconds, in this process."""

    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._events: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.get(key)
            if events is None:
                if len(self._events) >= self.max_keys:  # bound memory under a flood of keys
                    self._prune(now)
                events = self._events[key] = collections.deque()
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False
            events.append(now)
            return True

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]
        if len(self._events) >= self.max_keys:
            self._events.clear()


class SecurityHeaders:
    """Adds the security headers to every response, pages and files alike."""

    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            # Token URLs must never leak to another site through Referer. Not no-referrer:
            # under it browsers send `Origin: null` with our own forms.
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RedactTokens(logging.Filter):
    """Keeps tokens out of uvicorn's access log: /unsubscribe/<token> becomes …/[token]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = TOKEN_PATH.sub(r"/\1/[token]", str(args[2]).split("?", 1)[0])
            record.args = tuple(args)
        return True
