"""Seals and opens the tokens in unsubscribe, confirmation and preferences links with the
site's key: each token is encrypted and authenticated (AES-SIV), so it cannot be forged or
altered, and whoever sees it learns nothing of what it carries (no address, no list).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from pydantic import SecretStr

KEY_ENV = "BULLETIN_SECRET_KEY"
KEY_FILE = "secret_key"
KEY_BLOCK_ENV = "BULLETIN_SECRET_KEY_BLOCK"
#: The first byte of every sealed payload: the token format, so a later one can differ.
_FORMAT = b"\x01"
#: Purposes whose readable `payload.mac` tokens (before tokens were sealed) still open: the
#: List-Unsubscribe links of emails already sent never expire (RFC 8058).
LEGACY_PURPOSES = frozenset({"unsubscribe"})


def configured_key(state_dir: Path) -> SecretStr | None:
    """The site's key if it has one: BULLETIN_SECRET_KEY, else the Prefect Secret block that
    BULLETIN_SECRET_KEY_BLOCK names, else .bulletin/secret_key. None if none is set up."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return SecretStr(from_env)
    block = os.environ.get(KEY_BLOCK_ENV)
    if block:
        from bulletin.config.secrets import (
            secret_from_block,  # Prefect loads only for sites that use it
        )

        return secret_from_block(block, KEY_BLOCK_ENV)
    try:
        return SecretStr((state_dir / KEY_FILE).read_text(encoding="ascii").strip())
    except FileNotFoundError:
        return None


def secret_key(state_dir: Path) -> SecretStr:
    """The site's key (see `configured_key`), else a new one created once (mode 0600)."""
    key = configured_key(state_dir)
    if key is not None:
        return key
    path = state_dir / KEY_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    new = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another command created it first: use theirs
        return SecretStr(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(new + "\n")
    return SecretStr(new)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and opens tokens that carry fields for one purpose (the purpose is bound to the
    token, not written in it): `sign` seals, `verify` opens or answers None."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode("utf-8")
        # AES-SIV is deterministic: the same fields give the same token, so an email's
        # unsubscribe link is stable, and nothing random is needed per recipient.
        self._siv = AESSIV(hmac.new(self._key, b"bulletin sealed tokens", hashlib.sha512).digest())

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:20]

    def sign(self, purpose: str, *fields: str) -> str:
        """A token for `fields` that only `verify(purpose, ...)` with this key opens."""
        payload = _FORMAT + "\n".join(fields).encode("utf-8")
        return _b64(self._siv.encrypt(payload, [purpose.encode("utf-8")]))

    def verify(self, purpose: str, token: str) -> list[str] | None:
        """The fields sealed for `purpose`, or None for a forged, altered or foreign token."""
        if "." in token:
            return self._verify_legacy(purpose, token) if purpose in LEGACY_PURPOSES else None
        try:
            payload = self._siv.decrypt(_unb64(token), [purpose.encode("utf-8")])
            text = payload.decode("utf-8")
        except (ValueError, TypeError, InvalidTag, UnicodeDecodeError):
            return None
        if not text.startswith(_FORMAT.decode()):
            return None
        return text[1:].split("\n")

    def _verify_legacy(self, purpose: str, token: str) -> list[str] | None:
        """A signed, readable token of the first format (`payload.mac`)."""
        try:
            payload_part, mac_part = token.split(".", 1)
            payload, mac = _unb64(payload_part), _unb64(mac_part)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        try:
            first, *fields = payload.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            return None
        return fields if first == purpose else None

    def unsubscribe_token(self, list_name: str, email: str) -> str:
        """For the List-Unsubscribe link of every email: it never expires (RFC 8058)."""
        return self.sign("unsubscribe", list_name, email)

    def sign_expiring(self, purpose: str, expires: dt.datetime, *fields: str) -> str:
        """A token that `verify_expiring` accepts until `expires`."""
        return self.sign(purpose, str(int(expires.timestamp())), *fields)

    def verify_expiring(self, purpose: str, token: str, now: dt.datetime) -> list[str] | None:
        """The fields of a genuine token for `purpose` that has not expired, else None."""
        fields = self.verify(purpose, token)
        if not fields or not fields[0].isdigit():
            return None
        return fields[1:] if int(fields[0]) > now.timestamp() else None

    def keyed_hash(self, purpose: str, text: str) -> str:
        """A stable stand-in for `text` that cannot be reversed without the key."""
        payload = f"{purpose}\n{text}".encode()
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:40]

    def address_token(self, purpose: str, *fields: str) -> str:
        """A token for the local part of an address (VERP): `field.field.mac`, lowercase, so
        mail servers that fold the case of local parts keep it valid. Only the last field
        may contain a dot."""
        payload = "\n".join((purpose, *(f.lower() for f in fields))).encode("utf-8")
        mac = base64.b32encode(self._mac(payload)[:10]).decode("ascii").lower()
        return ".".join((*(f.lower() for f in fields), mac))

    def verify_address_token(self, purpose: str, token: str, count: int) -> list[str] | None:
        """The `count` fields of a genuine `address_token` for `purpose`, else None."""
        body, _, mac = token.lower().rpartition(".")
        fields = body.split(".", count - 1)
        if len(fields) != count or not all(fields):
            return None
        expected = self.address_token(purpose, *fields).rpartition(".")[2]
        return fields if hmac.compare_digest(mac, expected) else None
