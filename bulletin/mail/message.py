"""What a transport delivers: one message, and its bytes as SMTP's DATA step sends them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


CRLF = b"\r\n"
END_OF_DATA = b".\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")


def dot_stuffed(data: bytes) -> bytes:
    """`data` with a dot doubled at the start of every line (RFC 5321 4.5.2)."""
    if data.startswith(b".") or b"\n." in data:
        return _LEADING_DOT.sub(b"..", data)
    return data


def wire_form(data: bytes) -> bytes:
    """What the DATA step sends for `data`: dot-stuffed, ending with CRLF.CRLF."""
    data = dot_stuffed(data)
    return data + (END_OF_DATA if data.endswith(CRLF) else CRLF + END_OF_DATA)


@dataclass(frozen=True)
class Message:
    """Something to deliver: an email, or a partner's webhook payload."""

    channel: str  # "email" | "webhook"
    edition: str
    target: str  # the list or partner key
    recipient: str  # an email address or a webhook URL
    data: bytes
    name: str  # stable per edition, target and recipient: outbox file names use it
    sender: str = ""  # the envelope sender, for email
    headers: tuple[tuple[str, str], ...] = ()
    message_id: str = ""
    # `data` as SMTP's DATA step sends it (leading dots doubled, ending CRLF.CRLF), when
    # the sender made it cheaply beside `data`; SMTP makes it otherwise.
    wire: bytes | None = None
