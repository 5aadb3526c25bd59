"""Tells a WebSub hub that feeds changed, so that readers get pushes instead of polling.

With `[feeds] websub_hub`, every feed names the hub (`render.feeds`), and after `publish`
has written public/ it POSTs `hub.mode=publish` and `hub.url=<feed>` to the hub, once per
changed feed. This runs in a thread of its own beside the email: a slow or failing hub never
holds up delivery. Each ping is tried `ATTEMPTS` times (connection errors, 429 and 5xx), and
the outcome is recorded in the run's report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import requests

from bulletin.config.model import Config

FEED_NAMES = ("feed.xml", "atom.xml", "feed.json")
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0
#: the longest a run waits for its pings after the email went out
WAIT_SECONDS = ATTEMPTS * (TIMEOUT_SECONDS + 4 * BACKOFF_SECONDS)


@dataclass
class Pings:
    """What the hub was told: the feeds it accepted, and those it never did, with why."""

    hub: str
    accepted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def notes(self) -> list[str]:
        """One line for the report per outcome."""
        lines = []
        if self.accepted:
            lines.append(f"WebSub hub {self.hub} told of {len(self.accepted)} changed feeds")
        for url, why in self.failed.items():
            lines.append(
                f"WebSub hub {self.hub} was not told of {url}: {why} "
                f"(after {ATTEMPTS} attempts; readers still get it when they poll)"
            )
        return lines


def changed_feeds(config: Config, written: Sequence[str]) -> list[str]:
    """The URLs of the feeds among `written` (paths relative to the site, as `write_public`
    returns them)."""
    prefix = config.public_dir.relative_to(config.root).as_posix() + "/"
    return [
        config.site.url + path.removeprefix(prefix)
        for path in written
        if path.startswith(prefix) and path.rpartition("/")[2] in FEED_NAMES
    ]


def ping(hub: str, feeds: Sequence[str], session: requests.Session | None = None) -> Pings:
    """POST `hub.mode=publish` for each feed, retrying transient failures."""
    result = Pings(hub)
    http = session or requests.Session()
    try:
        for url in feeds:
            why = _ping_one(http, hub, url)
            if why is None:
                result.accepted.append(url)
            else:
                result.failed[url] = why
    finally:
        if session is None:
            http.close()
    return result


def _ping_one(http: requests.Session, hub: str, url: str) -> str | None:
    why = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
        try:
            response = http.post(
                hub, data={"hub.mode": "publish", "hub.url": url}, timeout=TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            why = f"{type(exc).__name__}"
            continue
        if 200 <= response.status_code < 300:
            return None
        why = f"HTTP {response.status_code}"
        if response.status_code != 429 and response.status_code < 500:
            return why  # the hub refused the request itself: trying again changes nothing
    return why


class Background:
    """A ping running in its own thread; `wait` gives its report lines."""

    def __init__(self, hub: str, feeds: Sequence[str]) -> None:
        self._result: Pings | None = None
        self._hub = hub
        self._thread = threading.Thread(
            target=self._run, args=(list(feeds),), name="websub-ping", daemon=True
        )
        self._thread.start()

    def _run(self, feeds: list[str]) -> None:
        self._result = ping(self._hub, feeds)

    def wait(self, timeout: float = WAIT_SECONDS) -> list[str]:
        self._thread.join(timeout)
        if self._result is None:
            return [f"WebSub hub {self._hub} did not answer in time; the feeds are published"]
        return self._result.notes()


def start(config: Config, written: Sequence[str]) -> Background | None:
    """Ping the site's hub about the feeds among `written`, in the background; None when
    there is no hub or no feed changed."""
    hub = config.feeds.websub_hub
    feeds = changed_feeds(config, written)
    if not hub or not feeds:
        return None
    return Background(hub, feeds)
