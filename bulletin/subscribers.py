"""Keeps each list's subscribers in the database: CSV import and export, and lookups."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from bulletin.config import Config
from bulletin.database import subscribers
from bulletin.errors import ConfigError, Problem, display_path

MAX_CSV_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str = ""
    language: str = ""


@dataclass
class ImportReport:
    added: int
    updated: int
    problems: list[Problem]


def normalise_address(address: str) -> str:
    """The address as stored: validated, domain lowercased. Raises ValueError."""
    try:
        valid = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
    if not valid.ascii_email:  # international domains become punycode; local parts cannot
        raise ValueError("letters outside ASCII before the @ need SMTPUTF8, not supported yet")
    return valid.ascii_email


def subscriber_list(config: Config, list_key: str) -> None:
    """Raise ConfigError unless `list_key` is a subscriber list of this site."""
    mailing_list = config.lists.get(list_key)
    if mailing_list is None:
        known = ", ".join(k for k, v in config.lists.items() if not v.external) or "none"
        raise ConfigError(f"no list {list_key!r} in bulletin.toml (subscriber lists: {known})")
    if mailing_list.external:
        raise ConfigError(
            f"lists.{list_key} is an external list ({mailing_list.address}); "
            "its members are kept by its own list server, not imported here"
        )


def read_csv(path: Path, shown: str) -> tuple[list[tuple[int, Subscriber]], list[Problem]]:
    """Rows of a subscriber CSV with their line numbers, and a problem per bad row."""
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_CSV_BYTES // 2**20} MB; split it")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not UTF-8 text; save it as UTF-8 CSV") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "email" not in fields:
        raise ConfigError(
            f"{shown}:1: the header row needs an 'email' column (found: "
            f"{', '.join(fields) or 'nothing'})"
        )
    reader.fieldnames = fields
    rows: list[tuple[int, Subscriber]] = []
    problems: list[Problem] = []
    for record in reader:
        line = reader.line_num
        email = (record.get("email") or "").strip()
        name = " ".join((record.get("name") or "").split())
        language = (record.get("language") or "").strip().lower()
        if not email and not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        try:
            email = normalise_address(email)
        except ValueError as exc:
            problems.append(
                Problem(
                    shown,
                    "address-invalid",
                    f"{email!r} is not a valid address ({exc}); fix or remove the row",
                    line,
                )
            )
            continue
        if language and not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", language):
            problems.append(
                Problem(
                    shown,
                    "language-invalid",
                    f"language {language!r} is not a code like en, ro or bg",
                    line,
                )
            )
            continue
        rows.append((line, Subscriber(email, name, language)))
    return rows, problems


def import_csv(engine: sa.Engine, config: Config, path: Path, list_key: str) -> ImportReport:
    """Add or update the good rows of `path` on the list; report the bad ones by line."""
    subscriber_list(config, list_key)
    rows, problems = read_csv(path, display_path(path, config.root))
    now = dt.datetime.now(dt.UTC)
    added = updated = 0
    with engine.begin() as db:
        existing = {
            row.email.lower(): row.id
            for row in db.execute(
                sa.select(subscribers.c.id, subscribers.c.email).where(
                    subscribers.c.list_name == list_key
                )
            )
        }
        for _, subscriber in rows:
            values = {"name": subscriber.name, "updated_at": now}
            if subscriber.language:
                values["language"] = subscriber.language
            key = subscriber.email.lower()
            if key in existing:
                db.execute(
                    subscribers.update().where(subscribers.c.id == existing[key]).values(values)
                )
                updated += 1
            else:
                result = db.execute(
                    subscribers.insert().values(
                        list_name=list_key,
                        email=subscriber.email,
                        status="active",
                        created_at=now,
                        **{"language": "", **values},
                    )
                )
                existing[key] = result.inserted_primary_key[0]
                added += 1
    return ImportReport(added, updated, problems)


def export_csv(engine: sa.Engine, config: Config, list_key: str) -> str:
    """The list as CSV: email, name, language, status."""
    subscriber_list(config, list_key)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "language", "status"])
    with engine.connect() as db:
        for row in db.execute(
            sa.select(subscribers)
            .where(subscribers.c.list_name == list_key)
            .order_by(subscribers.c.email)
        ):
            writer.writerow([row.email, row.name, row.language, row.status])
    return out.getvalue()


def active(db: sa.Connection, list_key: str) -> list[Subscriber]:
    """The subscribers of a list who receive editions, in a stable order."""
    rows = db.execute(
        sa.select(subscribers.c.email, subscribers.c.name, subscribers.c.language)
        .where(subscribers.c.list_name == list_key, subscribers.c.status == "active")
        .order_by(subscribers.c.id)
    )
    return [Subscriber(r.email, r.name, r.language) for r in rows]
