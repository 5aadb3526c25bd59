"""Signs each outgoing email with DKIM (RFC 6376), covering both unsubscribe headers.

rsa-sha256 with relaxed/relaxed canonicalisation, the RSA step done by OpenSSL (through
`cryptography`). An edition's messages differ only in a few headers and the unsubscribe
link, so `DkimSigner.body` canonicalises the constant body pieces once and each message
hashes only its own fills (see `DkimBody`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bulletin.config.model import DKIM_REQUIRED_HEADERS, DKIM_UNSIGNABLE_HEADERS
from bulletin.config.secrets import dkim_private_key
from bulletin.errors import ConfigError

if TYPE_CHECKING:
    from bulletin.config.model import Config, Dkim

_Fields = dict[bytes, list[bytes]]  # canonical header fields by lowercase name, top-down

#: Signed unless [delivery.dkim] headers says otherwise. Absent ones (Reply-To) are signed
#: as absent, so that nobody can add them on the way.
DEFAULT_HEADERS = (
    "From", "Reply-To", "To", "Subject", "Date", "Message-ID", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence", "Auto-Submitted",
    "MIME-Version", "Content-Type",
)  # fmt: skip
CRLF = b"\r\n"
_HEADER_NAME = b"DKIM-Signature"
_WIDTH = 78  # RFC 5322 2.1.1: lines SHOULD stay within 78 characters
_B64_LINE = 72
_SPACES = re.compile(rb"  +")
_TIME, _BODY_HASH = b"\0" * 10, b"\1" * 44  # stand-ins for the per-message t= and bh=
_PAD = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


class DkimSigner:
    """One domain's DKIM key, read and checked once per run; `sign` adds the signature."""

    def __init__(
        self,
        key: rsa.RSAPrivateKey,
        domain: str,
        selector: str,
        headers: Sequence[str] | None = None,
    ) -> None:
        self.domain = domain
        self.selector = selector
        names = [name.lower() for name in (headers or DEFAULT_HEADERS)]
        unsignable = sorted(DKIM_UNSIGNABLE_HEADERS.intersection(names))
        if unsignable:
            raise ConfigError(
                f"delivery.dkim.headers: {unsignable[0]} must not be signed: relays add or "
                "change it, which would break the signature; remove it from the list"
            )
        # Required headers are listed once more than they occur ("oversigned"), so that a
        # second List-Unsubscribe added in transit breaks the signature instead of riding on it.
        names += [name for name in DKIM_REQUIRED_HEADERS if name in names]
        self.headers = tuple(name.encode("ascii") for name in names)
        self._key = key
        # Tag order and spacing as dkimpy writes them: the signature field is itself hashed,
        # so this also lets tests compare our b= with dkimpy's byte for byte.
        words = b"; ".join((
            b"v=1", b"a=rsa-sha256", b"c=relaxed/relaxed",
            b"d=" + domain.encode("ascii"), b"i=@" + domain.encode("ascii"),
            b"q=dns/txt", b"s=" + selector.encode("ascii"), b"t=" + _TIME,
            b"h=" + b" : ".join(self.headers), b"bh=" + _BODY_HASH, b"b=",
        )).split(b" ")  # fmt: skip
        # Folded once, around stand-ins as wide as the values (t= has 10 digits until 2286).
        # b= on a line of its own, as dkimpy does, so a later refold cannot touch hashed tags.
        folded = _fold(words[:-1], len(_HEADER_NAME) + 2) + CRLF + b" " + words[-1]
        before_time, rest = folded.split(_TIME)
        before_hash, after_hash = rest.split(_BODY_HASH)
        self._unsigned = (before_time, before_hash, after_hash)

    @classmethod
    def load(cls, settings: Dkim, root: Path) -> DkimSigner:
        """The signer for [delivery.dkim]; ConfigError says what to fix, never showing the key."""
        key = dkim_private_key(settings, root)
        return cls(key, settings.domain, settings.selector, settings.headers)

    @classmethod
    def for_config(cls, config: Config) -> DkimSigner | None:
        """The signer the site's config asks for, or None when it does not sign."""
        settings = config.delivery.dkim
        return None if settings is None else cls.load(settings, config.root)

    def sign(self, data: bytes) -> bytes:
        """`data` (RFC 5322, CRLF) with a relaxed/relaxed rsa-sha256 DKIM-Signature prepended."""
        end = data.find(CRLF + CRLF)
        if data.startswith(CRLF):
            head, body = b"", data[2:]
        elif end < 0:  # no body: the header section may lack its final CRLF
            head, body = (data if data.endswith(CRLF) else data + CRLF), b""
        else:
            head, body = data[: end + 2], data[end + 4 :]
        digest = hashlib.sha256(_relaxed_body(body)).digest()
        return self.signature(head, digest) + data

    def template(self, head_below: bytes, pieces: Sequence[bytes]) -> DkimTemplate:
        """A signer for messages made alike: each message's own header lines come above
        `head_below`, and its body is `pieces` with a per-message fill between each two."""
        return DkimTemplate(self, _fields(head_below), DkimBody(pieces))

    def signature(self, head: bytes, body_hash: bytes) -> bytes:
        """The DKIM-Signature field (ending CRLF) for the header section `head` (CRLF-ended
        lines, no blank line) of a message whose canonical body has SHA-256 `body_hash`."""
        return self._signature({}, _fields(head), body_hash)

    def _signature(self, above: _Fields, below: _Fields, body_hash: bytes) -> bytes:
        before_time, before_hash, after_hash = self._unsigned
        unsigned = b"".join((
            before_time, b"%d" % time.time(), before_hash, base64.b64encode(body_hash),
            after_hash,
        ))  # fmt: skip
        hashed = _selected(self.headers, above, below)
        hashed.append(_relaxed_field(_HEADER_NAME, b" " + unsigned)[:-2])  # without its CRLF
        b64 = base64.b64encode(self._key.sign(b"".join(hashed), _PAD, _SHA256))
        lines = [b64[i : i + _B64_LINE] for i in range(0, len(b64), _B64_LINE)]
        return b"".join((_HEADER_NAME, b": ", unsigned, (CRLF + b" ").join(lines), CRLF))

    def __repr__(self) -> str:
        return f"DkimSigner(domain={self.domain!r}, selector={self.selector!r})"


class DkimTemplate:
    """`DkimSigner.template`: the constant header fields and body pieces prepared once."""

    def __init__(self, signer: DkimSigner, below: _Fields, body: DkimBody) -> None:
        self._signer = signer
        self._below = below
        self.body = body

    def signature(self, head_above: bytes, fills: Sequence[bytes]) -> bytes:
        """The DKIM-Signature field for the message with these header lines and fills."""
        return self._signer._signature(_fields(head_above), self._below, self.body.hash(fills))


class DkimBody:
    """A body's constant pieces, canonicalised once; `hash` hashes a message's fills between.

    Relaxed body canonicalisation (RFC 6376 3.4.4) works within lines, so the canonical
    body is the canonical pieces and fills joined, provided no whitespace run or CRLF
    crosses a join, and the last piece has text of its own for trailing empty lines to
    end at. Both are checked (the fills per message); otherwise the joined body is
    canonicalised whole.
    """

    def __init__(self, pieces: Sequence[bytes]) -> None:
        if not pieces:
            raise ValueError("a body has at least one piece")
        self._pieces = tuple(pieces)
        canonical = [_relaxed_lines(piece) for piece in pieces]
        canonical[-1] = _without_trailing_empty_lines(canonical[-1])
        # Trailing empty lines may reach back past the last piece only if it is all CRLFs.
        self._piecewise = len(pieces) == 1 or canonical[-1] != b""
        self._canonical = tuple(canonical)
        self._start = hashlib.sha256(canonical[0])
        #: Messages whose fills forced whole-body canonicalisation (expected: none).
        self.slow_messages = 0

    def hash(self, fills: Sequence[bytes]) -> bytes:
        """SHA-256 of the canonical body: the pieces with `fills[i]` after piece i."""
        if len(fills) != len(self._pieces) - 1:
            raise ValueError(f"{len(self._pieces) - 1} fills expected, got {len(fills)}")
        if self._piecewise and self._joins_cleanly(fills):
            digest = self._start.copy()
            for fill, canonical in zip(fills, self._canonical[1:], strict=True):
                digest.update(_relaxed_lines(fill))
                digest.update(canonical)
            return digest.digest()
        self.slow_messages += 1
        chunks = [self._pieces[0]]
        for fill, piece in zip(fills, self._pieces[1:], strict=True):
            chunks += (fill, piece)
        return hashlib.sha256(_relaxed_body(b"".join(chunks))).digest()

    def _joins_cleanly(self, fills: Sequence[bytes]) -> bool:
        left = self._pieces[0]
        for fill, piece in zip(fills, self._pieces[1:], strict=True):
            for right in (fill, piece):
                if right:
                    if left and not _clean_join(left, right):
                        return False
                    left = right
        return True


def _clean_join(left: bytes, right: bytes) -> bool:
    """Whether canonicalising `left + right` line by line equals doing each on its own."""
    return left.endswith(CRLF) or (left[-1] not in b" \t\r" and right[0] not in b" \t\n")


def _relaxed_lines(data: bytes) -> bytes:
    """No whitespace at line ends, runs of it made one space (RFC 6376 3.4.4 a).

    Tabs become spaces first, which changes neither step's result; then every search is
    for a literal, which is many times faster than a character class on a 40 KB body."""
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    if b" \r\n" in data:
        *lines, last = data.split(CRLF)  # the last has no CRLF after it: no line end yet
        data = CRLF.join([*(line.rstrip(b" ") for line in lines), last])
    if b"  " in data:
        data = _SPACES.sub(b" ", data)
    return data


def _without_trailing_empty_lines(data: bytes) -> bytes:
    """RFC 6376 3.4.4 b, with the final CRLF a non-empty body must end with."""
    end = len(data)
    while data.endswith(CRLF, 0, end):
        end -= 2
    return data[:end] + CRLF if end else b""


def _relaxed_body(body: bytes) -> bytes:
    return _without_trailing_empty_lines(_relaxed_lines(body))


def _relaxed_field(name: bytes, value: bytes) -> bytes:
    """`name:value` canonicalised for hashing, CRLF-ended (RFC 6376 3.4.2)."""
    value = value.replace(CRLF, b"").replace(b"\t", b" ")
    if b"  " in value:
        value = _SPACES.sub(b" ", value)
    return name.rstrip(b" \t").lower() + b":" + value.strip(b" \t") + CRLF


def _fields(head: bytes) -> _Fields:
    """The fields of the header section `head`, canonicalised (RFC 6376 3.4.2), top-down
    under each lowercase name."""
    lines: list[bytes] = []
    for line in head.split(CRLF):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += line  # unfolded, as canonicalisation would
        elif line:
            lines.append(line)
    fields: _Fields = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError(f"header line without a colon: {line[:40]!r}")
        name = name.rstrip(b" \t").lower()
        fields.setdefault(name, []).append(_relaxed_field(name, value))
    return fields


def _selected(names: Sequence[bytes], above: _Fields, below: _Fields) -> list[bytes]:
    """The canonical fields `names` sign, from a header of `above`'s fields then `below`'s.

    Each name takes the lowest instance not yet taken (RFC 6376 5.4.2); a name with none
    left signs the field as absent, which contributes nothing."""
    taken: dict[bytes, int] = {}
    selected = []
    for name in names:
        count = taken.get(name, 0)
        taken[name] = count + 1
        lower = below.get(name, ())
        if count < len(lower):
            selected.append(lower[-1 - count])
            continue
        upper = above.get(name, ())
        if count - len(lower) < len(upper):
            selected.append(upper[-1 - count + len(lower)])
    return selected


def _fold(words: list[bytes], used: int) -> bytes:
    """`words` joined by spaces, a space turned into CRLF+space where a line would pass
    `_WIDTH`; `used` is how much of the first line is already taken."""
    lines: list[bytes] = []
    line = words[0]
    for word in words[1:]:
        if used + len(line) + 1 + len(word) > _WIDTH:
            lines.append(line)
            line, used = word, 1
        else:
            line += b" " + word
    lines.append(line)
    return (CRLF + b" ").join(lines)
