"""Looks up the secrets a site's configuration names, when a run needs them: environment
variables, key files, and Prefect Secret blocks (through the Prefect adapter, only for
sites that use one). Nothing here is ever printed; errors name the source, never the value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from bulletin.config.model import Dkim, Partner, Smtp
from bulletin.config.people import Imap
from bulletin.errors import ConfigError
from bulletin.files import ReadRefused, read_capped

if TYPE_CHECKING:  # pydantic only for a run's secrets: checking a DKIM key needs none
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from pydantic import SecretStr

MIN_KEY_BITS = 1024  # receivers ignore DKIM signatures by shorter keys (RFC 8301)
MAX_KEY_FILE_BYTES = 64 * 1024  # a PEM RSA key of 16384 bits is under 13 KB


def secret_from_block(name: str, key: str) -> SecretStr:
    """A Prefect Secret block's value; `key` is the setting that names the block."""
    from bulletin import orchestration

    return orchestration.load_secret(name, key)


def smtp_credentials(settings: Smtp) -> tuple[str, SecretStr] | None:
    """The SMTP login, from the environment or a Prefect Secret block, if configured."""
    if not settings.username_env:
        return None
    username = os.environ.get(settings.username_env, "")
    if not username:
        return None
    if settings.password_block:
        return username, secret_from_block(settings.password_block, "delivery.smtp.password_block")
    from pydantic import SecretStr

    return username, SecretStr(os.environ.get(settings.password_env or "", ""))


def imap_login(settings: Imap) -> tuple[str, SecretStr]:
    """The IMAP user and password of [inbound.imap], from the environment or a Secret block."""
    username = os.environ.get(settings.username_env, "")
    if not username:
        raise ConfigError(
            f"inbound.imap.username_env: the environment variable {settings.username_env} is "
            "not set; set it to the mailbox's user name"
        )
    if settings.password_block:
        return username, secret_from_block(settings.password_block, "inbound.imap.password_block")
    password = os.environ.get(settings.password_env or "", "")
    if not password:
        raise ConfigError(
            f"inbound.imap.password_env: the environment variable {settings.password_env} is "
            "not set; set it to the mailbox's password, or name a Prefect Secret block in "
            "password_block"
        )
    from pydantic import SecretStr

    return username, SecretStr(password)


def partner_secret(partner: Partner, key: str) -> SecretStr:
    """A webhook partner's signing secret, from the environment or a Prefect Secret block."""
    if partner.secret_block:
        return secret_from_block(partner.secret_block, f"partners.{key}.secret_block")
    value = os.environ.get(partner.secret_env or "", "")
    if not value:
        raise ConfigError(
            f"partners.{key}.secret_env: the environment variable {partner.secret_env} is "
            "not set or empty; set it to the partner's signing secret (whsec_...)"
        )
    from pydantic import SecretStr

    return SecretStr(value)


def dkim_private_key(settings: Dkim, root: Path) -> RSAPrivateKey:
    """The RSA key of [delivery.dkim]; ConfigError says what to fix, never showing the key.

    cryptography is imported here, so that it loads only for sites that sign.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if settings.private_key_env:
        where = f"delivery.dkim.private_key_env: environment variable {settings.private_key_env}"
        value = os.environ.get(settings.private_key_env, "")
        if not value.strip():
            raise ConfigError(
                f"{where} is not set; export the PEM private key in it, "
                "or name a key file with private_key_file instead"
            )
        pem = value.encode("utf-8", "replace")
    else:
        name = settings.private_key_file or ""
        where = f"delivery.dkim.private_key_file: {name!r}"
        if not (root / name).exists():
            raise ConfigError(
                f"{where} not found; put the PEM private key there (the path is relative "
                "to the site folder)"
            )
        try:
            pem = read_capped(root / name, MAX_KEY_FILE_BYTES)
        except ReadRefused as exc:
            raise ConfigError(f"{where} cannot be read: {exc}; fix it") from exc
    pem = _normalise(pem)
    if b"ENCRYPTED" in pem:
        raise ConfigError(f"{where} holds an encrypted key; give the unencrypted PEM key")
    if b"PRIVATE KEY" not in pem:
        raise ConfigError(
            f"{where} holds no PEM private key (-----BEGIN PRIVATE KEY-----); the public "
            "key belongs in DNS, the private one here"
        )
    unreadable = (
        f"{where} is not a readable RSA private key; give an unencrypted PEM RSA key, "
        "e.g. from `openssl genrsa 2048`"
    )
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(unreadable) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(unreadable)
    if key.key_size < MIN_KEY_BITS:
        raise ConfigError(
            f"{where} is a {key.key_size}-bit key, too short for receivers to trust; "
            "generate a 2048-bit one"
        )
    return key


def _normalise(pem: bytes) -> bytes:
    """PEM with LF line ends, also when an env var holds it with literal \\n escapes."""
    pem = pem.strip().replace(b"\r\n", b"\n")
    if b"\n" not in pem and b"\\n" in pem:
        pem = pem.replace(b"\\n", b"\n")
    return pem + b"\n"
