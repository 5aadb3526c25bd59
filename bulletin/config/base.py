"""What every table of bulletin.toml shares: frozen models that refuse unknown keys and
control characters, and the checks of URLs and addresses that several tables use."""

from __future__ import annotations

import re
from email.utils import getaddresses
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

#: Control characters: a line break in a value that becomes a header injects headers.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_LINE_TEXT_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab and LF allowed


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    #: Fields of running text, which may hold line breaks and tabs.
    _running_text: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        running = info.field_name in cls._running_text
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            found = (_LINE_TEXT_CONTROL if running else _CONTROL).search(text)
            if found:
                kind = "a line break" if found.group() in "\r\n" else "a control character"
                raise ValueError(
                    f"holds {kind} (U+{ord(found.group()):04X}); write the value on one line "
                    "without control characters"
                )
        return value


def http_url(value: str, *, site: bool) -> str:
    """`value` if it is an absolute http(s) URL that every header, feed and HTTP client can
    carry; ValueError saying what to write otherwise. A site URL takes no query, fragment
    or user info (links are made by appending to it)."""
    example = "https://news.example.org/" if site else "https://partner.example/hooks/bulletin"
    if re.search(r"\s", value):
        raise ValueError("holds a space or line break; write the URL without them")
    if not value.isascii():
        raise ValueError(_non_ascii_advice(value))
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid URL ({exc}); write it like {example}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an absolute http(s) URL such as {example}")
    if site and (parts.query or parts.fragment or parts.username is not None):
        raise ValueError(
            f"must be the plain address of the site, without ?query, #fragment or "
            f"user:password@, such as {example}"
        )
    return value


def _non_ascii_advice(value: str) -> str:
    advice = "holds characters outside ASCII; percent-encode them in the path"
    try:
        host = urlsplit(value).hostname or ""
        if not host.isascii():
            advice += f", and write the host name as {host.encode('idna').decode()}"
    except (ValueError, UnicodeError):
        advice += ", and write an international host name in its xn-- (punycode) form"
    return advice


def email_address(value: str, example: str) -> str:
    """`value` if it is one address (with or without a display name) that SMTP can carry."""
    found = getaddresses([value])
    if len(found) != 1 or "@" not in found[0][1]:
        raise ValueError(f"{value!r} is not an email address like {example}")
    address = found[0][1]
    if not address.isascii():
        raise ValueError(
            f"{address!r} holds characters outside ASCII, which not every mail server "
            "accepts; write the domain in its xn-- (punycode) form and use an ASCII mailbox"
        )
    local, _, domain = address.rpartition("@")
    if not local or not re.fullmatch(
        r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9-]+)+", domain
    ):
        raise ValueError(f"{address!r} is not an email address like {example}")
    return value
