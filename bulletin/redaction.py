"""Hides the secrets a URL can carry (`https://user:password@host/`, a database URL's
password) before the URL, or a message that quotes it, is printed, logged or stored."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

HIDDEN = "***"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Shorter pieces of a secret are left in messages: hiding every "a" would garble them.
_MIN_PIECE = 3


def userinfo(url: str) -> str | None:
    """The `user:password` part of `url`, or None. It runs to the last "@" before the
    path, so a password holding an unencoded "@" is still taken whole."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    rest = url[scheme.end() :]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority:
        return None
    return authority.rpartition("@")[0]


def redact_url(url: str) -> str:
    """`url` with its user name and password replaced by ***; unchanged without them."""
    info = userinfo(url)
    if info is None:
        return url
    scheme = _SCHEME.match(url)
    assert scheme is not None
    return scheme.group() + HIDDEN + url[scheme.end() + len(info) :]


def url_secrets(url: str) -> list[str]:
    """The strings of `url` that must not appear in a message: its user info, password,
    their decoded forms, and the pieces a parser splitting at an "@" would show."""
    info = userinfo(url)
    if not info:
        return []
    password = info.partition(":")[2]
    found = {info, unquote(info), password, unquote(password)}
    for secret in list(found):
        found.update(secret.split("@"))
    return sorted((s for s in found if len(s) >= _MIN_PIECE), key=len, reverse=True)


def redact(text: str, urls: Iterable[str]) -> str:
    """`text` with each of `urls` shown redacted and every secret they carry hidden."""
    for url in urls:
        if not url:
            continue
        text = text.replace(url, redact_url(url))
        for secret in url_secrets(url):
            text = text.replace(secret, HIDDEN)
    return redact_urls(text)


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#'\"<>]*@")


def redact_urls(text: str) -> str:
    """`text` with the user info of every URL in it hidden."""
    return _URL_IN_TEXT.sub(lambda m: m.group()[: m.group().index("://") + 3] + HIDDEN + "@", text)
