"""Reads a site's bulletin.toml once into one typed, validated `Config`."""

from __future__ import annotations

import os
import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bulletin.errors import ConfigError, Problem

CONFIG_FILE = "bulletin.toml"
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

    def credentials(self) -> tuple[str, SecretStr] | None:
        """The SMTP login, from the environment or a Prefect Secret block, if configured."""
        if not self.username_env:
            return None
        username = os.environ.get(self.username_env, "")
        if not username:
            return None
        if self.password_block:
            return username, secret_from_block(self.password_block, "delivery.smtp.password_block")
        return username, SecretStr(os.environ.get(self.password_env or "", ""))


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

    def secret(self, key: str) -> SecretStr:
        """The webhook's signing secret, from the environment or a Prefect Secret block."""
        if self.secret_block:
            return secret_from_block(self.secret_block, f"partners.{key}.secret_block")
        value = os.environ.get(self.secret_env or "", "")
        if not value:
            raise ConfigError(
                f"partners.{key}.secret_env: the environment variable {self.secret_env} is "
                "not set or empty; set it to the partner's signing secret (whsec_...)"
            )
        return SecretStr(value)


class Config(_Section):
    site: Site
    sender: Sender
    funding: dict[str, Funding] = Field(default_factory=dict)
    database: Database = Field(default_factory=Database)
    delivery: Delivery = Field(default_factory=Delivery)
    lists: dict[str, MailingList] = Field(default_factory=dict)
    partners: dict[str, Partner] = Field(default_factory=dict)

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


def secret_from_block(name: str, key: str) -> SecretStr:
    """A Prefect Secret block's value; Prefect is imported only for sites that use one."""
    try:
        from prefect.blocks.system import Secret

        value = Secret.load(name).get()
    except Exception as exc:  # Prefect raises ValueError, httpx errors, ...
        raise ConfigError(
            f"{key}: cannot load the Prefect Secret block {name!r} ({type(exc).__name__}); "
            "create it with `prefect block create secret` or check PREFECT_API_URL"
        ) from exc
    return SecretStr(str(value))


def load_config(root: Path) -> Config:
    """Read and validate `root/bulletin.toml`; raise ConfigError listing every problem."""
    path = root / CONFIG_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no {CONFIG_FILE} here; run bulletin in a site folder or pass --site DIR"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(exc)
        problem = Problem(CONFIG_FILE, "config-syntax", f"not valid TOML: {exc}", line, "config")
        raise ConfigError(str(problem), [problem]) from exc
    try:
        config = Config.model_validate({**data, "root": root})
    except ValidationError as exc:
        problems = [_problem(error, text) for error in exc.errors()]
        raise ConfigError(f"{CONFIG_FILE}: {len(problems)} problem(s)", problems) from exc
    problems = _cross_checks(config, text)
    if problems:
        raise ConfigError(f"{CONFIG_FILE}: {len(problems)} problem(s)", problems)
    return config


def _cross_checks(config: Config, text: str) -> list[Problem]:
    problems: list[Problem] = []

    def add(code: str, message: str, *loc: str) -> None:
        problems.append(Problem(CONFIG_FILE, code, message, _line_of(text, loc), "config"))

    if config.site.default_funding not in config.funding:
        add(
            "funding-unknown",
            f"site.default_funding = {config.site.default_funding!r} but there is no "
            f"[funding.{config.site.default_funding}] table; add it",
            "site",
            "default_funding",
        )
    for name, funding in config.funding.items():
        if not (config.root / funding.emblem).is_file():
            add(
                "emblem-missing",
                f"funding.{name}.emblem: file {funding.emblem!r} not found; "
                f"create it with `python -m bulletin.emblem {funding.emblem}`",
                f"funding.{name}",
                "emblem",
            )
        if not funding.text:
            add(
                "funding-text-missing",
                f"[funding.{name}] has no texts; add [funding.{name}.text.{config.site.language}]"
                " with statement and disclaimer",
                f"funding.{name}",
            )
        for language, texts in funding.text.items():
            for field in ("statement", "disclaimer"):
                if not getattr(texts, field).strip():
                    add(
                        "funding-text-empty",
                        f"funding.{name}.text.{language}.{field} is empty; give the wording of "
                        "your grant agreement",
                        f"funding.{name}.text.{language}",
                        field,
                    )
    for name, mailing_list in config.lists.items():
        if mailing_list.address and "@" not in mailing_list.address:
            add("address-invalid", f"lists.{name}.address is not an email address", f"lists.{name}")
    for name, partner in config.partners.items():
        if not partner.webhook and not partner.email:
            add(
                "partner-channel-missing",
                f"partners.{name} has neither webhook nor email; give one of them",
                f"partners.{name}",
            )
        if partner.webhook and partner.email:
            add(
                "partner-channel-both",
                f"partners.{name} has both webhook and email; keep one (make two partners "
                "to get both)",
                f"partners.{name}",
            )
        if partner.webhook and not (partner.secret_env or partner.secret_block):
            add(
                "partner-secret-missing",
                f"partners.{name} has a webhook but no secret_env naming the variable that "
                "holds its signing secret (or secret_block naming a Prefect Secret block)",
                f"partners.{name}",
            )
        if partner.secret_env and partner.secret_block:
            add(
                "partner-secret-source",
                f"partners.{name} has both secret_env and secret_block; keep one",
                f"partners.{name}",
            )
    if config.delivery.dask_address and config.delivery.task_runner != "dask":
        add(
            "dask-address-unused",
            'delivery.dask_address is set but delivery.task_runner is not "dask"; set '
            'task_runner = "dask" or remove dask_address',
            "delivery",
            "dask_address",
        )
    dkim = config.delivery.dkim
    if dkim is not None:
        key = "private_key_env" if dkim.private_key_env else "private_key_file"
        if (dkim.private_key_env is None) == (dkim.private_key_file is None):
            add(
                "dkim-key-source",
                "delivery.dkim needs exactly one of private_key_env (the environment variable "
                "holding the PEM key) or private_key_file (a path in the site folder)",
                "delivery.dkim",
            )
        else:
            # Imported here so that cryptography loads only for sites that sign.
            from bulletin.dkim import DkimSigner

            try:
                DkimSigner.load(dkim, config.root)
            except ConfigError as exc:  # its message names the key's source, never the key
                add("dkim-key", str(exc), "delivery.dkim", key)
    return problems


def _problem(error: dict, text: str) -> Problem:
    loc = tuple(str(part) for part in error["loc"] if part != "from_")
    if error["loc"] and error["loc"][-1] == "from_":
        loc = (*loc, "from")
    dotted = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        section = ".".join(loc[:-1]) or "top level"
        message = f"unknown key {loc[-1]!r} in [{section}]; remove it or check its spelling"
        code = "config-unknown-key"
    elif kind == "missing":
        message = f"{dotted} is required; add it"
        code = "config-missing"
    else:
        message = f"{dotted}: {error['msg'].removeprefix('Value error, ')}"
        code = "config-invalid"
    return Problem(CONFIG_FILE, code, message, _line_of(text, loc), "config")


def _line_of(text: str, loc: tuple[str, ...] | list[str]) -> int | None:
    """Best-effort line number of a dotted key in TOML text, for error messages."""
    lines = text.splitlines()
    parts = list(loc)
    for split in range(len(parts), -1, -1):
        table, keys = parts[:split], parts[split:]
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(_key_re, table)) + r"\s*\]")
        start = 0
        if table:
            found = [i for i, line in enumerate(lines) if header.match(line)]
            if not found:
                continue
            start = found[0]
            if not keys:
                return start + 1
        key = keys[0] if keys else None
        for i in range(start + (1 if table else 0), len(lines)):
            if table and lines[i].lstrip().startswith("[") and i != start:
                break
            if not table and lines[i].lstrip().startswith("["):
                break
            if key and re.match(r"^\s*" + _key_re(key) + r"\s*=", lines[i]):
                return i + 1
        if table:
            return start + 1
    return None


def _key_re(key: str) -> str:
    return r"[\"']?" + re.escape(key) + r"[\"']?"


def _decode_error_line(exc: tomllib.TOMLDecodeError) -> int | None:
    match = re.search(r"line (\d+)", str(exc))
    return int(match.group(1)) if match else None
