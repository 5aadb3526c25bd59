"""Approvers' Ed25519 keys: made once per approver, the private half kept outside the site,
the public half listed in bulletin.toml, and the signatures they make checked against it.

An approver's private key is a PEM file `<ID>.key` in the folder BULLETIN_APPROVER_KEYS
names, else in `$XDG_CONFIG_HOME/bulletin/approvers/` (`~/.config/bulletin/approvers/`):
on the approver's own machine, never in the site, so editing the site gives nobody the key.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bulletin.config.model import Config
from bulletin.config.people import APPROVER_ID, Approver
from bulletin.errors import ConfigError

if TYPE_CHECKING:  # cryptography loads when a key is made, read or checked
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

KEYS_ENV = "BULLETIN_APPROVER_KEYS"
KEY_PREFIX = "ed25519:"


def keys_dir() -> Path:
    """The folder of this machine's approver keys."""
    named = os.environ.get(KEYS_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bulletin" / "approvers"


def public_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The `public_key` value of bulletin.toml for a key."""
    from cryptography.hazmat.primitives import serialization  # only to make or read a key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def _public_key(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.removeprefix(KEY_PREFIX)))


def find(config: Config, by: str) -> tuple[str, Approver]:
    """The approver `--by` names, by ID (`press-office`) or by name (`Press Office`)."""
    wanted = by.strip()
    for approver_id, approver in config.approvers.items():
        if wanted in (approver_id, approver.name):
            return approver_id, approver
    known = ", ".join(f"{a.name} ({i})" for i, a in config.approvers.items()) or "none yet"
    suggested = _suggest_id(wanted)
    raise ConfigError(
        f"bulletin.toml lists no approver {wanted!r} (approvers: {known}); an approver "
        f'creates their key once with bulletin approvers add {suggested} --name "{wanted}"'
    )


def _suggest_id(name: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in name.lower()).split()
    candidate = "-".join(words)
    return candidate if APPROVER_ID.fullmatch(candidate) else "ID"


def create(approver_id: str, folder: Path | None = None) -> tuple[Path, str]:
    """A new key for `approver_id`: the private key written (mode 0600, never overwritten)
    to `<folder>/<ID>.key`; its path and the public key for bulletin.toml."""
    from cryptography.hazmat.primitives import serialization  # only to make or read a key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not APPROVER_ID.fullmatch(approver_id):
        raise ConfigError(
            f"{approver_id!r} cannot name an approver: use lower-case letters, digits and "
            "hyphens, such as press-office"
        )
    folder = folder or keys_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{approver_id}.key"
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            f"{path} exists already: that approver has a key on this machine; its public key "
            f"is {public_text(load(path))}"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path, public_text(key)


def load(path: Path) -> Ed25519PrivateKey:
    """The private key in `path`, or a ConfigError that says what is wrong with it."""
    from cryptography.hazmat.primitives import serialization  # only to make or read a key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no approver key here; an approver approves on the machine that holds "
            f"their key (or names it with --key FILE, or sets {KEYS_ENV} to its folder)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the approver key: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not an unencrypted PEM private key made by bulletin approvers add"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


@dataclass(frozen=True)
class ApproverKey:
    """An approver as bulletin.toml lists them, with their private key: what signs."""

    id: str
    name: str
    key: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return base64.urlsafe_b64encode(self.key.sign(message)).rstrip(b"=").decode("ascii")


def signing_key(config: Config, by: str, key_file: Path | None = None) -> ApproverKey:
    """The private key of the approver `by` names, checked against the public key that
    bulletin.toml lists for them."""
    approver_id, approver = find(config, by)
    path = key_file or keys_dir() / f"{approver_id}.key"
    key = load(path)
    if public_text(key) != approver.public_key:
        raise ConfigError(
            f"{path} is not the key bulletin.toml lists for approvers.{approver_id} "
            f"({approver.name}); use that approver's own key"
        )
    return ApproverKey(approver_id, approver.name, key)


def verifies(approver: Approver, message: bytes, signature: str) -> bool:
    """Whether `signature` is the approver's signature of `message`."""
    from cryptography.exceptions import InvalidSignature

    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        _public_key(approver.public_key).verify(raw, message)
    except (InvalidSignature, ValueError):
        return False
    return True
