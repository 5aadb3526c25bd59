"""Serves public/ as the archive: small files from memory, with caching headers and the
content types of feeds and calendars; never the next edition's previews.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
from email.utils import formatdate
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

CACHED_FILE_BYTES = 512 * 1024  # public/ files up to this size are served from memory
CACHED_FILES = 4096


FEED_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
    "calendar.ics": "text/calendar; charset=utf-8",
    "event.ics": "text/calendar; charset=utf-8",
}


class PublicFiles(StaticFiles):
    """public/ as the archive: feed content types, caching headers, no previews of the next
    edition (they are not published yet) and no temporary files of a writer.

    Pages and feeds are small and read far more often than `publish` rewrites them, so they
    are kept in memory, checked against one stat per request; larger files stream from disk.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, html=True, check_dir=False)
        self._cache: dict[str, tuple[tuple[int, int], bytes, dict[str, str]]] = {}

    async def check_config(self) -> None:
        """public/ may not exist yet (nothing built): that is a 404, not a crash."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        parts = Path(path).parts
        if parts and (parts[0] == "preview" or any(p.startswith(".") for p in parts)):
            return "", None
        return super().lookup_path(path)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] in ("GET", "HEAD"):
            cached = self._from_memory(path, scope)
            if cached is not None:
                return cached
        return await super().get_response(path, scope)

    def _from_memory(self, path: str, scope: Scope) -> Response | None:
        full, found = self.lookup_path(path)
        if found and stat.S_ISDIR(found.st_mode) and scope["path"].endswith("/"):
            full, found = self.lookup_path(os.path.join(path, "index.html"))
        if not found or not stat.S_ISREG(found.st_mode) or found.st_size > CACHED_FILE_BYTES:
            return None
        version = (found.st_mtime_ns, found.st_size)
        entry = self._cache.get(full)
        if entry is None or entry[0] != version:
            body = Path(full).read_bytes()
            headers = _file_headers(full, body, found)
            if len(self._cache) >= CACHED_FILES:
                self._cache.clear()
            entry = self._cache[full] = (version, body, headers)
        _, body, headers = entry
        if self.is_not_modified(Headers(headers), Headers(scope=scope)):
            return NotModifiedResponse(Headers(headers))
        if scope["method"] == "HEAD":
            return Response(b"", headers=headers)
        return Response(body, headers=headers)

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.path.basename(full_path)
        if name in FEED_TYPES:
            response.headers["content-type"] = FEED_TYPES[name]
        response.headers["cache-control"] = _cache_control(name)
        return response


def _cache_control(name: str) -> str:
    # Pages and feeds change at each publish; images hardly ever.
    fresh = 300 if name.endswith((".html", ".xml", ".json", ".ics")) else 86400
    return f"public, max-age={fresh}"


def _file_headers(full: str, body: bytes, found: os.stat_result) -> dict[str, str]:
    name = os.path.basename(full)
    kind = FEED_TYPES.get(name)
    if kind is None:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/xml", "application/json"):
            kind += "; charset=utf-8"
    return {
        "content-type": kind,
        "content-length": str(len(body)),
        "etag": '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
        "last-modified": formatdate(found.st_mtime, usegmt=True),
        "cache-control": _cache_control(name),
    }
