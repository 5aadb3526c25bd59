"""Guards every answer of the web service: security headers, redirects to the site's own
address, rate limits, and tokens kept out of the access log.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
import time
from urllib.parse import unquote, urljoin, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The routes whose next path segment is a token.
TOKEN_ROUTES = frozenset({"unsubscribe", "confirm", "preferences"})
_TOKEN_SHAPED = re.compile(r"[A-Za-z0-9_.=-]{22,}")
_PLAIN_NAME = re.compile(r"[a-z0-9]+(?:[.-][a-z0-9]+)*")  # slugs, edition ids, file names


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

    def __init__(self, app: ASGIApp, hsts: bool, site_url: str | None = None) -> None:
        self.app = app
        self.site_url = site_url
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
                headers = [*message.get("headers", []), *self.headers]
                if self.site_url is not None:
                    headers = [
                        (k, own_location(self.site_url, v.decode("latin-1")).encode("latin-1"))
                        if k.lower() == b"location"
                        else (k, v)
                        for k, v in headers
                    ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def own_location(site_url: str, location: str) -> str:
    """A redirect's target on the site's own address ([site] url), whatever Host the request
    named: Starlette builds absolute redirects from the Host header, which anyone can set."""
    parts = urlsplit(location)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return urljoin(site_url, path.lstrip("/") or "./")


def redact_path(path: str) -> str:
    """The path as logged: no query, nothing after a token route's name (in any case, with
    empty or percent-encoded segments), and [token] for any segment shaped like a token."""
    kept: list[str] = []
    segments = path.split("?", 1)[0].split("#", 1)[0].split("/")
    for at, segment in enumerate(segments):
        word = unquote(segment).strip()
        if word.lower() in TOKEN_ROUTES and any(segments[at + 1 :]):
            return "/".join([*kept, segment, "[token]"])
        if _TOKEN_SHAPED.fullmatch(word) and not _PLAIN_NAME.fullmatch(word):
            segment = "[token]"
        kept.append(segment)
    return "/".join(kept)


class RedactTokens(logging.Filter):
    """Keeps tokens out of uvicorn's access log: /unsubscribe/<token> becomes …/[token]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = redact_path(str(args[2]))
            record.args = tuple(args)
        return True
