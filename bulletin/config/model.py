"""The typed configuration of a site: one frozen model per table of bulletin.toml.

The models hold values only; secrets named here are looked up by `bulletin.config.secrets`
when a run needs them, never while the file is read.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_DATABASE = "sqlite:///.bulletin/bulletin.db"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Site(_Section):
    title: str
    url: str
    language: str = "en"
    timezone: str = "UTC"
    default_funding: str = "eu"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http(s) URL such as https://news.example.org/")
        return value if value.endswith("/") else value + "/"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r}; use a name like Europe/Bucharest"
            ) from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Sender(_Section):
    from_: str = Field(alias="from")
    reply_to: str | None = None

    @field_validator("from_", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and "@" not in parseaddr(value)[1]:
            raise ValueError(f"{value!r} is not an email address like Name <news@example.org>")
        return value

    @property
    def address(self) -> str:
        return parseaddr(self.from_)[1]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


class FundingText(_Section):
    statement: str
    disclaimer: str
    #: where the wording comes from (the grant agreement, an official translation…)
    source: str = ""


class Funding(_Section):
    emblem: str
    text: dict[str, FundingText] = Field(default_factory=dict)


class Database(_Section):
    url: str = DEFAULT_DATABASE


class Smtp(_Section):
    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "ssl"] = "none"
    username_env: str | None = None
    password_env: str | None = None
    #: the name of a Prefect Secret block holding the password, instead of password_env
    password_block: str | None = None
    timeout: float = 30.0


#: Header fields a DKIM signature always covers (SPEC "Email", RFC 8058 section 4).
DKIM_REQUIRED_HEADERS = ("from", "list-unsubscribe", "list-unsubscribe-post")
#: Fields relays add or rewrite (RFC 6376 5.4.1), and the signature itself: signing them
#: would break the signature in transit.
DKIM_UNSIGNABLE_HEADERS = frozenset(
    ("return-path", "received", "comments", "keywords", "bcc", "resent-bcc", "dkim-signature")
)


class Dkim(_Section):
    """[delivery.dkim]: sign every email; the key comes from an env var or a file, never here."""

    domain: str
    selector: str
    private_key_env: str | None = None
    private_key_file: str | None = None
    headers: list[str] | None = None

    @field_validator("domain", "selector")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_-]+)*", value):
            raise ValueError(f"{value!r} is not a DNS name such as example.org or mail2026")
        return value.lower()

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        bad = [name for name in value if not re.fullmatch(r"[!-9;-~]+", name)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a header field name such as List-Id")
        lowered = [name.lower() for name in value]
        missing = [name for name in DKIM_REQUIRED_HEADERS if name not in lowered]
        if missing:
            raise ValueError(f"must include {', '.join(missing)}; the signature has to cover them")
        unsignable = [name for name in value if name.lower() in DKIM_UNSIGNABLE_HEADERS]
        if unsignable:
            raise ValueError(
                f"{unsignable[0]} must not be signed: relays add or change it, which would "
                "break the signature; remove it"
            )
        return value


class Feeds(_Section):
    #: a WebSub hub (https URL): every feed names it and a publish pings it
    websub_hub: str | None = None

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s]+\S*", value):
            raise ValueError("must be the hub's absolute http(s) URL, such as https://hub.example/")
        return value


class Delivery(_Section):
    transport: Literal["outbox", "smtp"] = "outbox"
    rate_per_second: float = Field(default=0, ge=0)
    connections: int = Field(default=1, ge=1, le=64)
    retry_attempts: int = Field(default=5, ge=1, le=50)
    retry_backoff_seconds: float = Field(default=2.0, ge=0)
    smtp: Smtp = Field(default_factory=Smtp)
    dkim: Dkim | None = None
    # Who hears about a run that failed for good: one address, sent through the transport.
    notify: str | None = None
    # Where the sending runs: one process ("threads"), or batches on a Dask cluster.
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None  # tcp://scheduler:8786; unset: a local cluster
    dask_workers: int = Field(default=2, ge=1, le=256)  # workers of that local cluster
    batch_size: int = Field(default=1000, ge=1)

    @field_validator("notify")
    @classmethod
    def _notify(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is not an email address; write it as comms@example.org")
        return value


class MailingList(_Section):
    name: str
    address: str | None = None
    languages: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    #: an item with no version in the reader's language: sent in its original language
    #: ("original") or left out ("skip")
    fallback: Literal["original", "skip"] = "original"

    @property
    def external(self) -> bool:
        """An external list is one address (a mailing-list server), not our subscribers."""
        return self.address is not None


class Partner(_Section):
    name: str
    webhook: str | None = None
    #: the environment variable holding the webhook's signing secret (whsec_<base64> or raw)
    secret_env: str | None = None
    #: the name of a Prefect Secret block holding it, instead of secret_env
    secret_block: str | None = None
    email: str | None = None
    languages: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    #: seconds to wait for the partner's server to connect and to answer
    timeout: float = Field(default=10.0, gt=0, le=300)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and "@" not in parseaddr(value)[1]:
            raise ValueError(f"{value!r} is not an email address like desk@partner.example")
        return value


class Imap(_Section):
    """[inbound.imap]: the mailbox bounces, complaints and unsubscribes arrive in."""

    host: str
    port: int | None = None  # 993 with ssl, else 143
    security: Literal["none", "starttls", "ssl"] = "ssl"
    username_env: str = "BULLETIN_IMAP_USERNAME"
    password_env: str | None = "BULLETIN_IMAP_PASSWORD"  # noqa: S105 (a variable name)
    #: the name of a Prefect Secret block holding the password, instead of password_env
    password_block: str | None = None
    folder: str = "INBOX"
    #: where a message goes once its outcome is recorded; "" flags it there instead
    done_folder: str = "bulletin-done"
    #: where a message that cannot be processed goes; "" leaves it in place
    error_folder: str = ""
    timeout: float = Field(default=30.0, gt=0)

    @property
    def server_port(self) -> int:
        return self.port or (993 if self.security == "ssl" else 143)


class Inbound(_Section):
    """[inbound]: VERP envelope senders and the processing of what comes back to them."""

    return_path: str
    #: the tokenised mailto of List-Unsubscribe; default unsubscribe@ the return_path's domain
    unsubscribe_address: str | None = None
    soft_bounce_limit: int = Field(default=3, ge=1)
    soft_bounce_days: int = Field(default=30, ge=1)
    max_message_bytes: int = Field(default=10 * 2**20, ge=1024)
    imap: Imap | None = None

    @field_validator("return_path", "unsubscribe_address")
    @classmethod
    def _bare_address(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+\.[A-Za-z]+", value
        ):
            raise ValueError(
                f"{value!r} is not a bare address like bounces@example.org (no name, no '+')"
            )
        return value

    @property
    def unsubscribe(self) -> str:
        domain = self.return_path.rpartition("@")[2]
        return self.unsubscribe_address or f"unsubscribe@{domain}"


class Config(_Section):
    site: Site
    sender: Sender
    funding: dict[str, Funding] = Field(default_factory=dict)
    database: Database = Field(default_factory=Database)
    delivery: Delivery = Field(default_factory=Delivery)
    feeds: Feeds = Field(default_factory=Feeds)
    lists: dict[str, MailingList] = Field(default_factory=dict)
    partners: dict[str, Partner] = Field(default_factory=dict)
    inbound: Inbound | None = None

    root: Path = Field(default=Path("."), exclude=True)

    @property
    def public_dir(self) -> Path:
        return self.root / "public"

    @property
    def outbox_dir(self) -> Path:
        return self.root / "outbox"

    @property
    def state_dir(self) -> Path:
        return self.root / ".bulletin"

    @property
    def content_dir(self) -> Path:
        return self.root / "content"

    @property
    def database_url(self) -> str:
        """The database URL, with a relative SQLite path taken from the site folder."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str((self.root / url[len(prefix) :]).resolve())
        return url

    def funding_text(self, rule: str, language: str) -> FundingText | None:
        funding = self.funding.get(rule)
        return funding.text.get(language) if funding else None
