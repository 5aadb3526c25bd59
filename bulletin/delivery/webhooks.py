"""Signs partner webhooks per the Standard Webhooks specification and POSTs them over HTTPS.

    webhook-id         stable for one edition and partner, so a retry carries the same id
                       and the partner can drop a repeat
    webhook-timestamp  seconds since the epoch, taken at each attempt
    webhook-signature  "v1," + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}"))

A secret is `whsec_` followed by base64 (the specification's form), or any other string,
whose UTF-8 bytes are then the key.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from pydantic import SecretStr

from bulletin import __version__
from bulletin.delivery.transports import Deferred, Rejected, SendOutcome, Sent, Transport
from bulletin.errors import ConfigError, WebhookError
from bulletin.mail.message import Message
from bulletin.redaction import redact_url, redact_urls

SECRET_PREFIX = "whsec_"  # noqa: S105 -- the format's prefix, not a secret
#: The longest wait a partner's Retry-After can ask of a run; longer asks wait this long.
RETRY_AFTER_CAP_SECONDS = 120.0
#: How much of a partner's reply goes into the report.
REPLY_EXCERPT = 200
USER_AGENT = f"bulletin/{__version__} (Standard Webhooks)"


def secret_bytes(secret: str, where: str = "") -> bytes:
    """The signing key: base64-decoded for `whsec_...` secrets, else the string's bytes."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except ValueError as exc:
            raise ConfigError(
                f"{where or 'the webhook secret'}: starts with whsec_ but the rest is not "
                "base64; copy the whole secret the partner gave you"
            ) from exc
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ConfigError(f"{where or 'the webhook secret'} is empty")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one attempt."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(key: bytes, msg_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(key, msg_id, timestamp, body),
    }


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delay-seconds or HTTP-date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_SECONDS)


@dataclass(frozen=True)
class Reply:
    status: int
    seconds: float
    excerpt: str


def _temporary(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _excerpt(response: requests.Response) -> str:
    try:
        head = next(response.iter_content(REPLY_EXCERPT * 4), b"")
    except requests.RequestException:
        head = b""
    text = redact_urls(" ".join(head.decode("utf-8", "replace").split()))
    return text[:REPLY_EXCERPT] + ("…" if len(text) > REPLY_EXCERPT else "")


_REASON = re.compile(r"\[(?:Errno|SSL: [A-Z_]+)[^\]]*\]\s*([^'\")(]+)")


def _reason(exc: Exception) -> str:
    """The useful part of a requests/urllib3 error chain, such as 'Connection refused'."""
    found = _REASON.findall(str(exc))
    return found[-1].strip(" .:,") if found else type(exc).__name__


class WebhookTransport(Transport):
    """POSTs signed webhooks to one partner over one `requests.Session`.

    TLS certificates are always verified and every request has a timeout. `post` raises
    WebhookError, which `send` turns into its outcome: Deferred for timeouts, refused or
    dropped connections, 408, 429 and 5xx (with the partner's Retry-After), Rejected for
    other answers and refused certificates.
    """

    def __init__(
        self,
        partner: str,
        url: str,
        secret: SecretStr | str,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        verify: bool | str = True,
    ) -> None:
        self.partner = partner
        self.url = url  # may hold user:password (sent as Basic auth); never shown
        self.shown = redact_url(url)
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        self._key = secret_bytes(raw, f"partners.{partner} secret")
        self.timeout = timeout
        self._clock = clock
        self._verify = verify
        self._session = requests.Session()

    def __repr__(self) -> str:  # never the secret
        return f"WebhookTransport({self.partner!r}, {self.shown!r})"

    def send(self, message: Message) -> SendOutcome:
        try:
            self.post(message.data, message.message_id)
        except WebhookError as exc:
            if exc.permanent:
                return Rejected(str(exc))
            return Deferred(str(exc), exc.retry_after)
        return Sent(message.message_id)

    def post(self, body: bytes, msg_id: str) -> Reply:
        """Sign and POST `body`; the partner's 2xx reply, or WebhookError."""
        timestamp = int(self._clock())
        headers = signed_headers(self._key, msg_id, body, timestamp)
        where = f"partner {self.partner} ({self.shown})"
        start = time.perf_counter()
        try:
            response = self._session.post(
                self.url,
                data=body,
                headers=headers,
                timeout=(self.timeout, self.timeout),
                verify=self._verify,
                allow_redirects=False,
                stream=True,
            )
        except requests.exceptions.SSLError as exc:
            raise WebhookError(
                f"{where}: its TLS certificate was refused ({_reason(exc)}); the partner "
                "must serve a certificate from a trusted authority",
                recipient=self.shown,
                permanent=True,
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise WebhookError(
                f"{where}: no answer within {self.timeout:g} s", recipient=self.shown
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise WebhookError(
                f"{where}: cannot connect ({_reason(exc)})", recipient=self.shown
            ) from exc
        except requests.RequestException as exc:
            raise WebhookError(
                f"{where}: {_reason(exc)}; check partners.{self.partner}.webhook",
                recipient=self.shown,
                permanent=True,
            ) from exc
        with response:
            seconds = time.perf_counter() - start
            excerpt = _excerpt(response)
            status = response.status_code
            if 200 <= status < 300:
                return Reply(status, seconds, excerpt)
            said = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
            if 300 <= status < 400:
                moved = redact_urls(response.headers.get("location", "?"))
                raise WebhookError(
                    f"{where} answered {said} (redirect to {moved}); bulletin does not "
                    f"follow redirects, update partners.{self.partner}.webhook",
                    recipient=self.shown,
                    permanent=True,
                    status=status,
                )
            raise WebhookError(
                f"{where} answered {said}",
                recipient=self.shown,
                permanent=not _temporary(status),
                status=status,
                retry_after=retry_after(response.headers.get("retry-after")),
            )

    def close(self) -> None:
        self._session.close()
