"""Compiles an edition's email once into MIME bytes, then personalises it per recipient.

Only the recipient's address, Message-ID, Date and unsubscribe link differ between
messages, so everything else is encoded once and the per-recipient work is a few joins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import quopri
import re
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING
from urllib.parse import quote

from bulletin.config.model import Config, MailingList
from bulletin.mail.builder import (
    edition_fields,
    emblem_part,
    emblems,
    envelope_sender,
    folded,
    message_id_domain,
    to_field,
)
from bulletin.mail.message import CRLF, END_OF_DATA, Message, dot_stuffed
from bulletin.render.renderer import UNSUBSCRIBE_PLACEHOLDER, RenderedEmail

if TYPE_CHECKING:
    from bulletin.mail.dkim import DkimSigner, DkimTemplate
    from bulletin.mail.verp import Verp


_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote() never changes


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends, as it goes over SMTP."""
    encoded = quopri.encodestring(text.replace("\r\n", "\n").encode("utf-8"))
    return encoded.replace(b"\n", CRLF)


class CompiledEmail:
    """One language's variant of an email edition for one list, encoded once;
    `personalise` makes each message."""

    def __init__(
        self,
        config: Config,
        rendered: RenderedEmail,
        edition_id: str,
        list_key: str,
        mailing_list: MailingList,
        dkim: DkimSigner | None = None,
        verp: Verp | None = None,
    ) -> None:
        self.edition_id = edition_id
        self._verp = verp
        self.list_key = list_key
        self.sender = envelope_sender(config)
        self._domain = message_id_domain(config)
        self._unsubscribe_base = f"{config.site.url}unsubscribe/"
        # An external list's server (or a partner's desk) decides who leaves it: a one-click
        # link of ours could not work there, so its messages carry none.
        self.one_click = not mailing_list.external
        fields = edition_fields(
            config,
            rendered.subject,
            list_key,
            mailing_list.name,
            rendered.language,
            one_click=self.one_click,
        )
        self._fixed_headers = folded(fields)
        digest = hashlib.sha256(rendered.html.encode() + rendered.text.encode()).hexdigest()
        self._outer = f"alt-{digest[:24]}"
        self._inner = f"rel-{digest[24:48]}"
        self._text = [_qp(part) for part in rendered.text.split(UNSUBSCRIBE_PLACEHOLDER)]
        self._html = [_qp(part) for part in rendered.html.split(UNSUBSCRIBE_PLACEHOLDER)]
        address = parseaddr(config.sender.reply_to or config.sender.from_)[1]
        self._mailto = f"mailto:{address}?subject="
        outer, inner = self._outer.encode(), self._inner.encode()
        images = emblems(config, rendered.notices).items()
        self._images = b"".join(emblem_part(inner, cid, path) for cid, path in images)
        self._fixed_headers += b"".join((
            b'Content-Type: multipart/alternative; boundary="' + outer + b'"' + CRLF,
            CRLF,
            b"--" + outer + CRLF,
            b'Content-Type: text/plain; charset="utf-8"' + CRLF,
            b"Content-Transfer-Encoding: quoted-printable" + CRLF,
            CRLF,
        ))  # fmt: skip
        self._between = b"".join((
            CRLF,
            b"--" + outer + CRLF,
            b'Content-Type: multipart/related; boundary="' + inner + b'"; type="text/html"' + CRLF,
            CRLF,
            b"--" + inner + CRLF,
            b'Content-Type: text/html; charset="utf-8"' + CRLF,
            b"Content-Transfer-Encoding: quoted-printable" + CRLF,
            CRLF,
        ))  # fmt: skip
        self._closing = b"".join((
            CRLF,
            self._images,
            b"--" + inner + b"--" + CRLF,
            b"--" + outer + b"--" + CRLF,
        ))  # fmt: skip
        # The same pieces dot-stuffed for SMTP, once: every piece starts a line (those
        # after an unsubscribe link follow its CRLF), so stuffing each piece stuffs the
        # whole message, and per message SMTP sends a join instead of a scan.
        self._wire_fixed_headers = dot_stuffed(self._fixed_headers)
        self._wire_text = [dot_stuffed(part) for part in self._text]
        self._wire_between = dot_stuffed(self._between)
        self._wire_html = [dot_stuffed(part) for part in self._html]
        self._wire_closing = dot_stuffed(self._closing) + END_OF_DATA
        self._dkim_template = None if dkim is None else self._signing_template(dkim)
        self._last_date: tuple[object, str] = (None, "")

    def _signing_template(self, dkim: DkimSigner) -> DkimTemplate:
        """The constant header fields and body pieces, canonicalised once: each message
        then hashes only its own headers and unsubscribe links."""
        end = self._fixed_headers.index(CRLF + CRLF) + 2
        pieces = [self._fixed_headers[end + 2 :]]
        for parts, after in ((self._text, self._between), (self._html, self._closing)):
            pieces[-1] += parts[0]
            pieces += parts[1:]
            pieces[-1] += after
        return dkim.template(self._fixed_headers[:end], pieces)

    def _date(self, when: dt.datetime) -> str:
        """The Date: value, made once a second: it shows whole seconds."""
        # Equal instants in other zones are written with other offsets: both are the key.
        second = (when.replace(microsecond=0), when.utcoffset())
        last = self._last_date  # one read: the workers share this email
        if last[0] != second:
            last = self._last_date = (second, format_datetime(when))
        return last[1]

    def message_name(self, recipient: str) -> str:
        digest = hashlib.sha256(f"{self.list_key}\n{recipient.lower()}".encode()).hexdigest()
        return f"{self.list_key}-{digest[:16]}"

    def message_id(self, recipient: str) -> str:
        return f"<{self.edition_id}.{self.message_name(recipient)}@{self._domain}>"

    def personalise(self, recipient: str, token: str, when: dt.datetime, name: str = "") -> Message:
        """The message for one recipient, exactly as it goes over SMTP."""
        url = self._unsubscribe_base + token
        sender, name_ = self.sender, self.message_name(recipient)
        if self._verp is None:
            # Tokens are URL-safe Base64, which quote() leaves as it is: only the space is
            # quoted then, without quote()'s walk over every character.
            said = f"unsubscribe%20{token}" if _URL_SAFE.fullmatch(token) else None
            mailto = self._mailto + (said or quote(f"unsubscribe {token}"))
        else:  # the token is in the address: replies that drop the subject still count
            mailto = f"mailto:{self._verp.mailto(self.edition_id, name_)}?subject=unsubscribe"
            sender = self._verp.envelope(self.edition_id, name_)
        to = to_field(name, recipient) if name else recipient
        # Written by hand, not through a folding policy: it is the per-recipient hot path,
        # and a policy would RFC 2047-encode the long unsubscribe token.
        unsubscribe = f"List-Unsubscribe: <{url}>,\r\n <{mailto}>\r\n" if self.one_click else ""
        varying = (
            f"To: {to}\r\n"
            f"Date: {self._date(when)}\r\n"
            f"Message-ID: <{self.edition_id}.{name_}@{self._domain}>\r\n"
            f"{unsubscribe}"
        ).encode("ascii")
        url_qp = b"=" + CRLF + _qp(url) + b"=" + CRLF
        data = b"".join(
            (
                varying,
                self._fixed_headers,
                url_qp.join(self._text),
                self._between,
                url_qp.join(self._html),
                self._closing,
            )
        )
        # The personal pieces start no line with a dot: they are headers and a URL.
        wire = b"".join(
            (
                varying,
                self._wire_fixed_headers,
                url_qp.join(self._wire_text),
                self._wire_between,
                url_qp.join(self._wire_html),
                self._wire_closing,
            )
        )
        if self._dkim_template is not None:
            links = [url_qp] * (len(self._text) + len(self._html) - 2)
            signature = self._dkim_template.signature(varying, links)
            data, wire = signature + data, signature + wire  # it starts no line with a dot
        return Message(
            channel="email",
            edition=self.edition_id,
            target=self.list_key,
            recipient=recipient,
            data=data,
            name=name_,
            sender=sender,
            message_id=f"<{self.edition_id}.{name_}@{self._domain}>",
            wire=wire,
        )
