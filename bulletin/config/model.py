"""The typed configuration of a site: one frozen model per table of bulletin.toml.

The models hold values only; secrets named here are looked up by `bulletin.config.secrets`
when a run needs them, never while the file is read.
"""

from __future__ import annotations

import re
from dataclasses import field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bulletin.config.base import Section, checks, email_address, http_url, table
from bulletin.config.people import APPROVER_ID, Approver, Inbound
from bulletin.redaction import redact_url, userinfo

DEFAULT_DATABASE = "sqlite:///.bulletin/bulletin.db"


@table
class Site(Section):
    title: str
    url: str
    language: str = "en"
    timezone: str = "UTC"
    default_funding: str = "eu"

    @staticmethod
    @checks("url")
    def _url(value: str) -> str:
        http_url(value, site=True)
        return value if value.endswith("/") else value + "/"

    @staticmethod
    @checks("timezone")
    def _timezone(value: str) -> str:
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


@table
class Sender(Section):
    from_: str = field(metadata={"alias": "from"})
    reply_to: str | None = None

    @staticmethod
    @checks("from_", "reply_to")
    def _address(value: str | None) -> str | None:
        return None if value is None else email_address(value, "Name <news@example.org>")

    @property
    def address(self) -> str:
        from email.utils import parseaddr

        return parseaddr(self.from_)[1]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@table
class FundingText(Section):
    _running_text = frozenset({"statement", "disclaimer"})
    statement: str
    disclaimer: str
    #: where the wording comes from (the grant agreement, an official translation…)
    source: str = ""


@table
class Funding(Section):
    emblem: str
    text: dict[str, FundingText] = field(default_factory=dict)


@table
class Database(Section):
    url: str = DEFAULT_DATABASE

    @staticmethod
    @checks("url")
    def _url(value: str) -> str:
        if not re.match(r"(sqlite|postgresql|postgres)(\+\w+)?://", value):
            raise ValueError(
                "must be a sqlite:///PATH or postgresql://USER@HOST/NAME URL, such as "
                f"{DEFAULT_DATABASE}"
            )
        if "@" in (userinfo(value) or ""):
            raise ValueError(
                "the user name or password holds an unencoded '@'; percent-encode it "
                "(write @ as %40, : as %3A, / as %2F)"
            )
        return value


@table
class Smtp(Section):
    host: str = "127.0.0.1"
    port: int = field(default=25, metadata={"ge": 1, "le": 65535})
    security: Literal["none", "starttls", "ssl"] = "none"
    username_env: str | None = None
    password_env: str | None = None
    #: the name of a Prefect Secret block holding the password, instead of password_env
    password_block: str | None = None
    #: seconds to wait for the server to connect and to answer each command
    timeout: float = field(default=30.0, metadata={"gt": 0, "le": 600})

    @staticmethod
    @checks("host")
    def _host(value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", value):
            raise ValueError(f"{value!r} is not a host name or IP address such as 127.0.0.1")
        return value


#: Header fields a DKIM signature always covers (SPEC "Email", RFC 8058 section 4).
DKIM_REQUIRED_HEADERS = ("from", "list-unsubscribe", "list-unsubscribe-post")
#: Fields relays add or rewrite (RFC 6376 5.4.1), and the signature itself: signing them
#: would break the signature in transit.
DKIM_UNSIGNABLE_HEADERS = frozenset(
    ("return-path", "received", "comments", "keywords", "bcc", "resent-bcc", "dkim-signature")
)


@table
class Dkim(Section):
    """[delivery.dkim]: sign every email; the key comes from an env var or a file, never here."""

    domain: str
    selector: str
    private_key_env: str | None = None
    private_key_file: str | None = None
    headers: list[str] | None = None

    @staticmethod
    @checks("domain", "selector")
    def _dns_name(value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9])?(\.[A-Za-z0-9_-]+)*", value):
            raise ValueError(f"{value!r} is not a DNS name such as example.org or mail2026")
        return value.lower()

    @staticmethod
    @checks("headers")
    def _headers(value: list[str] | None) -> list[str] | None:
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


@table
class Feeds(Section):
    #: a WebSub hub (https URL): every feed names it and a publish pings it
    websub_hub: str | None = None
    #: how many entries each feed carries, the newest first (0: every entry)
    items: int = field(default=50, metadata={"ge": 0, "le": 100_000})

    @staticmethod
    @checks("websub_hub")
    def _hub(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^/\s]+\S*", value):
            raise ValueError("must be the hub's absolute http(s) URL, such as https://hub.example/")
        return value


@table
class Delivery(Section):
    transport: Literal["outbox", "smtp"] = "outbox"
    rate_per_second: float = field(default=0.0, metadata={"ge": 0})
    connections: int = field(default=1, metadata={"ge": 1, "le": 64})
    retry_attempts: int = field(default=5, metadata={"ge": 1, "le": 50})
    retry_backoff_seconds: float = field(default=2.0, metadata={"ge": 0})
    smtp: Smtp = field(default_factory=Smtp)
    dkim: Dkim | None = None
    # Who hears about a run that failed for good: one address, sent through the transport.
    notify: str | None = None
    # Where the sending runs: one process ("threads"), or batches on a Dask cluster.
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None  # tcp://scheduler:8786; unset: a local cluster
    dask_workers: int = field(
        default=2, metadata={"ge": 1, "le": 256}
    )  # workers of that local cluster
    batch_size: int = field(default=1000, metadata={"ge": 1})

    @staticmethod
    @checks("notify")
    def _notify(value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is not an email address; write it as comms@example.org")
        return value


@table
class MailingList(Section):
    name: str
    address: str | None = None
    languages: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    #: an item with no version in the reader's language: sent in its original language
    #: ("original") or left out ("skip")
    fallback: Literal["original", "skip"] = "original"

    @staticmethod
    @checks("address")
    def _address(value: str | None) -> str | None:
        return None if value is None else email_address(value, "members@lists.example.org")

    @property
    def external(self) -> bool:
        """An external list is one address (a mailing-list server), not our subscribers."""
        return self.address is not None


@table
class Partner(Section):
    name: str
    webhook: str | None = None
    #: the environment variable holding the webhook's signing secret (whsec_<base64> or raw)
    secret_env: str | None = None
    #: the name of a Prefect Secret block holding it, instead of secret_env
    secret_block: str | None = None
    email: str | None = None
    languages: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    #: seconds to wait for the partner's server to connect and to answer
    timeout: float = field(default=10.0, metadata={"gt": 0, "le": 300})

    @staticmethod
    @checks("webhook")
    def _webhook(value: str | None) -> str | None:
        if value is None:
            return None
        http_url(value, site=False)
        if value.startswith("http://") and userinfo(value) is not None:
            raise ValueError(
                "holds a user name and password, which http:// would send in clear; use "
                "https://, or leave them out (every webhook is signed)"
            )
        return value

    @staticmethod
    @checks("email")
    def _email(value: str | None) -> str | None:
        return None if value is None else email_address(value, "desk@partner.example")

    @property
    def webhook_shown(self) -> str | None:
        """The webhook URL as messages, reports and the ledger show it: no user:password."""
        return None if self.webhook is None else redact_url(self.webhook)


#: An approver's key name in bulletin.toml; it also names the private key's file.
@table
class Accessibility(Section):
    #: rule → the written reason why it is only a warning on this site (shown in reports)
    warnings: dict[str, str] = field(default_factory=dict)


@table
class Config(Section):
    site: Site
    sender: Sender
    funding: dict[str, Funding] = field(default_factory=dict)
    database: Database = field(default_factory=Database)
    delivery: Delivery = field(default_factory=Delivery)
    feeds: Feeds = field(default_factory=Feeds)
    lists: dict[str, MailingList] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)
    approvers: dict[str, Approver] = field(default_factory=dict)
    inbound: Inbound | None = None
    accessibility: Accessibility = field(default_factory=Accessibility)

    root: Path = field(default=Path("."), metadata={"exclude": True})

    @staticmethod
    @checks("approvers")
    def _approver_ids(value: dict[str, Approver]) -> dict[str, Approver]:
        bad = [key for key in value if not APPROVER_ID.fullmatch(key)]
        if bad:
            raise ValueError(
                f"approvers.{bad[0]}: name approvers with lower-case letters, digits and "
                "hyphens, such as press-office"
            )
        return value

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
