"""Builds every email bulletin sends, to one policy: who it is from and where replies go, the
Message-ID domain, Auto-Submitted, MIME, the emblem as an inline image, and DKIM.

Editions are compiled once per list by `compiled.CompiledEmail`, which takes its constant
header fields and emblem parts from here; one-off emails (the failure notice, the web
service's confirmation and preferences emails) are made whole by `compose`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

from bulletin.config.model import Config
from bulletin.mail.dkim import DkimSigner
from bulletin.mail.message import CRLF, Message
from bulletin.render.notices import Notice

#: Every email bulletin sends is machine-made: auto-responders must not answer it (RFC 3834).
AUTO_SUBMITTED = "auto-generated"

Fields = list[tuple[str, str]]
#: RFC 5322 2.1.1: a line of a header field is at most 998 octets, CRLF excluded.
MAX_LINE = 998


def sender_fields(config: Config, *, reply_to: bool = True) -> Fields:
    """From, and Reply-To where the site sets one (and `reply_to` asks for it)."""
    fields = [("From", config.sender.from_)]
    if reply_to and config.sender.reply_to:
        fields.append(("Reply-To", config.sender.reply_to))
    return fields


def envelope_sender(config: Config) -> str:
    """The SMTP envelope sender (MAIL FROM) of every email."""
    return config.sender.address


def message_id_domain(config: Config) -> str:
    """The domain on the right of every Message-ID bulletin makes."""
    return config.sender.domain


def to_field(name: str, address: str) -> str:
    """The To: value for a recipient: the name on one line, without control characters,
    shortened (or left out) so that `To: ...` stays within RFC 5322's 998 octets."""
    if not name.isprintable():  # most names are: one check then, not one per character
        name = "".join(c if c.isprintable() else " " for c in name)
    name = " ".join(name.split())
    while name:
        value = formataddr((name, address))
        if len("To: ") + len(value.encode("utf-8")) <= MAX_LINE:
            return value
        name = name[: len(name) * 3 // 4].rstrip()
    return address


def edition_fields(
    config: Config,
    subject: str,
    list_key: str,
    list_name: str,
    language: str = "",
    *,
    one_click: bool = True,
) -> Fields:
    """The header fields every message of an edition to a list shares, in order; each
    message adds its own To, Date, Message-ID and List-Unsubscribe above them.

    Without `one_click` (an external list or a partner's desk, which bulletin cannot take
    anyone off) there is no List-Unsubscribe-Post: the list server adds its own."""
    one_click_fields = [("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
    return [
        *sender_fields(config),
        ("Subject", subject),
        *([("Content-Language", language)] if language else []),
        ("List-Id", f"{list_name} <{list_key}.{message_id_domain(config)}>"),
        *(one_click_fields if one_click else []),
        ("Precedence", "bulk"),
        ("Auto-Submitted", AUTO_SUBMITTED),
        ("MIME-Version", "1.0"),
    ]


def folded(fields: Iterable[tuple[str, str]]) -> bytes:
    """Header fields as they go over SMTP: encoded and folded, each line ending CRLF."""
    head = EmailMessage(policy=SMTP)
    for name, value in fields:
        head[name] = value
    return b"".join(head.policy.fold_binary(name, value) for name, value in head.items())


def emblems(config: Config, notices: Iterable[Notice]) -> dict[str, Path]:
    """The emblem images an email's HTML shows, by Content-ID, each once."""
    return {notice.cid: config.root / notice.emblem for notice in notices}


def emblem_part(boundary: bytes, cid: str, path: Path) -> bytes:
    """An emblem as an inline PNG part of a multipart/related body, `boundary` above it."""
    body = base64.encodebytes(path.read_bytes()).replace(b"\n", CRLF)
    return (
        b"--" + boundary + CRLF
        + b"Content-Type: image/png" + CRLF
        + b"Content-Transfer-Encoding: base64" + CRLF
        + b"Content-ID: <" + cid.encode() + b">" + CRLF
        + b'Content-Disposition: inline; filename="' + path.name.encode() + b'"' + CRLF
        + CRLF + body
    )  # fmt: skip


def signer(config: Config) -> DkimSigner | None:
    """The DKIM signer `[delivery.dkim]` configures, or None when the site does not sign."""
    return DkimSigner.for_config(config)


def compose(
    config: Config,
    *,
    to: str,
    subject: str,
    text: str,
    when: dt.datetime,
    edition: str,
    target: str,
    html: str | None = None,
    notices: Sequence[Notice] = (),
    id_left: str | None = None,
    name: str | None = None,
    reply_to: bool = True,
    sign: bool = True,
) -> Message:
    """A one-off email to `to`: the text, and the HTML beside it with the notices' emblems
    inline; DKIM-signed when the site signs (and `sign`). Its outbox name is `name`, by
    default `edition` and a digest of the bytes."""
    email = EmailMessage(policy=SMTP)
    for header, value in sender_fields(config, reply_to=reply_to):
        email[header] = value
    email["To"] = to_field("", to)
    email["Subject"] = subject
    email["Date"] = format_datetime(when)
    email["Message-ID"] = make_msgid(id_left, domain=message_id_domain(config))
    email["Auto-Submitted"] = AUTO_SUBMITTED
    email.set_content(text)
    if html is not None:
        email.add_alternative(html, subtype="html")
        # The alternative just added: the HTML part, which its images are related to.
        html_part = next(
            part for part in email.iter_parts() if part.get_content_subtype() == "html"
        )
        for cid, path in emblems(config, notices).items():
            html_part.add_related(
                path.read_bytes(), "image", "png", cid=f"<{cid}>", filename=path.name
            )
    data = email.as_bytes()
    dkim = signer(config) if sign else None
    if dkim is not None:
        data = dkim.sign(data)
    return Message(
        channel="email",
        edition=edition,
        target=target,
        recipient=to,
        data=data,
        name=name or f"{edition}-{hashlib.sha256(data).hexdigest()[:16]}",
        sender=envelope_sender(config),
        message_id=str(email["Message-ID"]),
    )
