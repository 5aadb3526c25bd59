"""Signs each outgoing email with DKIM (RFC 6376), covering both unsubscribe headers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from bulletin.config import DKIM_REQUIRED_HEADERS
from bulletin.errors import ConfigError

if TYPE_CHECKING:
    from bulletin.config import Config, Dkim

#: Signed unless [delivery.dkim] headers says otherwise. Absent ones (Reply-To) are signed
#: as absent, so that nobody can add them on the way.
DEFAULT_HEADERS = (
    "From", "Reply-To", "To", "Subject", "Date", "Message-ID", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "Precedence", "Auto-Submitted",
    "MIME-Version", "Content-Type",
)  # fmt: skip
MIN_KEY_BITS = 1024  # receivers ignore signatures by shorter keys (RFC 8301)
_CANONICALIZE = (b"relaxed", b"relaxed")
_PROBE = b"From: a@example.org\r\nList-Unsubscribe: <https://example.org/u>\r\n\r\nprobe\r\n"


class DkimSigner:
    """One domain's DKIM key, read and checked once per run; `sign` adds the signature."""

    def __init__(
        self, pem: bytes, domain: str, selector: str, headers: list[str] | None = None
    ) -> None:
        self.domain = domain
        self.selector = selector
        names = [name.lower() for name in (headers or DEFAULT_HEADERS)]
        # Required headers are listed once more than they occur ("oversigned"), so that a
        # second List-Unsubscribe added in transit breaks the signature instead of riding on it.
        names += [name for name in DKIM_REQUIRED_HEADERS if name in names]
        self.headers = tuple(name.encode("ascii") for name in names)
        self._pem = pem
        self._domain = domain.encode("ascii")
        self._selector = selector.encode("ascii")
        self.sign(_PROBE)  # a header dkimpy refuses to sign fails here, not mid-delivery

    @classmethod
    def load(cls, settings: Dkim, root: Path) -> DkimSigner:
        """The signer for [delivery.dkim]; ConfigError says what to fix, never showing the key."""
        if settings.private_key_env:
            where = (
                f"delivery.dkim.private_key_env: environment variable {settings.private_key_env}"
            )
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
            try:
                pem = (root / name).read_bytes()
            except FileNotFoundError as exc:
                raise ConfigError(
                    f"{where} not found; put the PEM private key there (the path is relative "
                    "to the site folder)"
                ) from exc
            except OSError as exc:
                raise ConfigError(f"{where} cannot be read ({exc.strerror}); fix it") from exc
        pem = _normalise(pem)
        if b"ENCRYPTED" in pem:
            raise ConfigError(f"{where} holds an encrypted key; give the unencrypted PEM key")
        if b"PRIVATE KEY" not in pem:
            raise ConfigError(
                f"{where} holds no PEM private key (-----BEGIN PRIVATE KEY-----); the public "
                "key belongs in DNS, the private one here"
            )
        try:
            bits = parse_pem_private_key(pem)["modulus"].bit_length()
        except (UnparsableKeyError, ValueError, IndexError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{where} is not a readable RSA private key; give an unencrypted PEM RSA key, "
                "e.g. from `openssl genrsa 2048`"
            ) from exc
        if bits < MIN_KEY_BITS:
            raise ConfigError(
                f"{where} is a {bits}-bit key, too short for receivers to trust; "
                "generate a 2048-bit one"
            )
        return cls(pem, settings.domain, settings.selector, settings.headers)

    @classmethod
    def for_config(cls, config: Config) -> DkimSigner | None:
        """The signer the site's config asks for, or None when it does not sign."""
        settings = config.delivery.dkim
        return None if settings is None else cls.load(settings, config.root)

    def sign(self, data: bytes) -> bytes:
        """`data` (RFC 5322, CRLF) with a relaxed/relaxed rsa-sha256 DKIM-Signature prepended."""
        try:
            header = dkim.DKIM(data).sign(
                self._selector,
                self._domain,
                self._pem,
                canonicalize=_CANONICALIZE,
                include_headers=self.headers,
            )
        except (dkim.DKIMException, UnparsableKeyError) as exc:
            raise ConfigError(
                f"delivery.dkim: cannot sign for d={self.domain} s={self.selector}: {exc}; "
                "check the key and the headers list"
            ) from exc
        return header + data

    def __repr__(self) -> str:
        return f"DkimSigner(domain={self.domain!r}, selector={self.selector!r})"


def _normalise(pem: bytes) -> bytes:
    """PEM with LF line ends, also when an env var holds it with literal \\n escapes."""
    pem = pem.strip().replace(b"\r\n", b"\n")
    if b"\n" not in pem and b"\\n" in pem:
        pem = pem.replace(b"\\n", b"\n")
    return pem + b"\n"
