"""Signs and verifies the tokens in unsubscribe and confirmation links with the site's key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

KEY_ENV = "BULLETIN_SECRET_KEY"
KEY_FILE = "secret_key"


def secret_key(state_dir: Path) -> SecretStr:
    """The key from BULLETIN_SECRET_KEY, else the site's own, created once (mode 0600)."""
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return SecretStr(from_env)
    path = state_dir / KEY_FILE
    try:
        return SecretStr(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another command created it first: use theirs
        return SecretStr(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return SecretStr(key)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks `payload.signature` tokens; payloads name their purpose."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key.get_secret_value().encode("utf-8")

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:20]

    def sign(self, purpose: str, *fields: str) -> str:
        payload = "\n".join((purpose, *fields)).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, purpose: str, token: str) -> list[str] | None:
        """The fields signed for `purpose`, or None for a forged or foreign token."""
        try:
            payload_part, mac_part = token.split(".", 1)
            payload, mac = _unb64(payload_part), _unb64(mac_part)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        first, *fields = payload.decode("utf-8").split("\n")
        return fields if first == purpose else None

    def unsubscribe_token(self, list_name: str, email: str) -> str:
        return self.sign("unsubscribe", list_name, email)
