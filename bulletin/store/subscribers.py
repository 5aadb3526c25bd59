"""Keeps each list's subscribers in the database: CSV import and export, and lookups."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from bulletin.config.model import Config
from bulletin.errors import ConfigError, Problem, display_path
from bulletin.store import ledger
from bulletin.store.database import deliveries, subscribers, suppressions
from bulletin.store.statuses import Channel, SubscriberStatus

MAX_CSV_BYTES = 50 * 1024 * 1024
PENDING, ACTIVE = SubscriberStatus.PENDING, SubscriberStatus.ACTIVE
UNSUBSCRIBED, SUPPRESSED = SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED


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
                        status=ACTIVE,
                        created_at=now,
                        **{"language": "", **values},
                    )
                )
                inserted = result.inserted_primary_key
                assert inserted is not None  # an INSERT of one row always has its key
                existing[key] = inserted[0]
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
        .where(subscribers.c.list_name == list_key, subscribers.c.status == ACTIVE)
        .order_by(subscribers.c.id)
    )
    return [Subscriber(r.email, r.name, r.language) for r in rows]


# --- The subscriber's own actions, from the web service (bulletin/web/) --------------------
# Statuses (SubscriberStatus): pending (signed up on the web, not confirmed yet) → active →
# unsubscribed; suppressed (a permanent bounce) is set by delivery.


def open_lists(config: Config) -> dict[str, str]:
    """The lists a subscriber can join on the web (not the external ones): key → name."""
    return {key: item.name for key, item in config.lists.items() if not item.external}


def _rows_of(
    db: sa.Connection, email: str, list_keys: Iterable[str] | None = None
) -> list[sa.Row[Any]]:
    query = sa.select(subscribers).where(sa.func.lower(subscribers.c.email) == email.lower())
    if list_keys is not None:
        query = query.where(subscribers.c.list_name.in_(list(list_keys)))
    return list(db.execute(query.order_by(subscribers.c.list_name)))


def request_subscription(
    engine: sa.Engine, email: str, list_keys: list[str], language: str, now: dt.datetime
) -> None:
    """Record a web sign-up: the address is pending on each list it is not on yet.

    Rows that exist keep their status (an active subscriber stays active, one who left stays
    out) until the address confirms; the caller answers the same in every case.
    """
    _join(engine, email, list_keys, language, now, PENDING,
          lambda row: {"language": language} if row.status == PENDING else None)  # fmt: skip


def confirm_subscription(
    engine: sa.Engine, email: str, list_keys: list[str], language: str, now: dt.datetime
) -> None:
    """The address proved it is reachable and wants `list_keys`: make it active there.

    A suppressed address stays suppressed: delivery decided it bounces for good.
    """
    _join(engine, email, list_keys, language, now, ACTIVE,
          lambda row: None if row.status == SUPPRESSED
          else {"status": ACTIVE, "language": language})  # fmt: skip


def _join(
    engine: sa.Engine,
    email: str,
    list_keys: list[str],
    language: str,
    now: dt.datetime,
    status: str,
    changes: Callable[[sa.Row[Any]], dict[str, Any] | None],
) -> None:
    """Add the address to each list it is not on with `status`; change the rows it is on
    as `changes` says (None: leave the row as it is)."""
    with engine.begin() as db:
        present = {row.list_name: row for row in _rows_of(db, email, list_keys)}
        for key in list_keys:
            row = present.get(key)
            if row is None:
                db.execute(
                    subscribers.insert().values(
                        list_name=key, email=email, name="", language=language,
                        status=status, created_at=now, updated_at=now,
                    )
                )  # fmt: skip
            elif (values := changes(row)) is not None:
                db.execute(
                    subscribers.update()
                    .where(subscribers.c.id == row.id)
                    .values(**values, updated_at=now)
                )


def unsubscribe(engine: sa.Engine, list_key: str, email: str, now: dt.datetime) -> None:
    """Take the address off the list, and out of any edition still being sent to it."""
    with engine.begin() as db:
        db.execute(
            subscribers.update()
            .where(
                # The token holds the address as stored, so the unique index finds the row.
                subscribers.c.list_name == list_key,
                subscribers.c.email == email,
                subscribers.c.status.in_([ACTIVE, PENDING]),
            )
            .values(status=UNSUBSCRIBED, updated_at=now)
        )
        ledger.skip_pending_for(db, email, "unsubscribed", now, list_key)


@dataclass(frozen=True)
class Subscription:
    list_key: str
    status: str
    language: str


def subscriptions(engine: sa.Engine, email: str) -> list[Subscription]:
    """Every list row of the address, whatever its status."""
    with engine.connect() as db:
        return [Subscription(r.list_name, r.status, r.language) for r in _rows_of(db, email)]


def set_preferences(
    engine: sa.Engine,
    config: Config,
    email: str,
    wanted: set[str],
    language: str,
    now: dt.datetime,
) -> None:
    """The address is on exactly the `wanted` open lists, in `language`; it proved it is
    reachable (its token came by email), so a list it joins here is active at once."""
    lists = open_lists(config)
    joined = [key for key in lists if key in wanted]
    confirm_subscription(engine, email, joined, language, now)
    with engine.begin() as db:
        for row in _rows_of(db, email, [key for key in lists if key not in wanted]):
            if row.status in (ACTIVE, PENDING):
                db.execute(
                    subscribers.update()
                    .where(subscribers.c.id == row.id)
                    .values(status=UNSUBSCRIBED, language=language, updated_at=now)
                )
                ledger.skip_pending_for(db, email, "unsubscribed", now, row.list_name)


def personal_data(engine: sa.Engine, config: Config, email: str) -> dict[str, Any]:
    """Everything bulletin holds about the address (GDPR art. 15 and 20), as JSON data."""

    def when(value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()

    with engine.connect() as db:
        rows = _rows_of(db, email)
        sent = db.execute(
            sa.select(
                deliveries.c.edition_id,
                deliveries.c.target,
                deliveries.c.status,
                deliveries.c.updated_at,
            )
            .where(
                deliveries.c.channel == Channel.EMAIL,
                sa.func.lower(deliveries.c.recipient) == email.lower(),
            )
            .order_by(deliveries.c.id)
        )
        deliveries_out = [
            {"edition": r.edition_id, "list": r.target, "status": r.status,
             "updated_at": when(r.updated_at)}
            for r in sent
        ]  # fmt: skip
        bounce = db.execute(
            sa.select(suppressions).where(suppressions.c.email == email.lower())
        ).first()
    return {
        "email": email,
        "subscriptions": [
            {
                "list": r.list_name,
                "list_name": config.lists[r.list_name].name
                if r.list_name in config.lists
                else r.list_name,
                "status": r.status,
                "name": r.name,
                "language": r.language,
                "created_at": when(r.created_at),
                "updated_at": when(r.updated_at),
            }
            for r in rows
        ],
        "deliveries": deliveries_out,
        "suppressed": {"reason": bounce.reason, "since": when(bounce.created_at)}
        if bounce
        else None,
    }


def erase(engine: sa.Engine, email: str, stand_in: str, now: dt.datetime) -> None:
    """Forget the address (GDPR art. 17): its list rows and bounce record go; in the ledger a
    keyed hash (`stand_in`) replaces it, so each delivery row still says the edition went
    out and is never sent again, and nothing still pending goes to it."""
    address = email.lower()
    with engine.begin() as db:
        db.execute(subscribers.delete().where(sa.func.lower(subscribers.c.email) == address))
        ledger.forget_recipient(db, email, stand_in, now)


def purge_unconfirmed(engine: sa.Engine, before: dt.datetime) -> int:
    """Sign-ups never confirmed, whose link has expired, are deleted: no consent, no data."""
    with engine.begin() as db:
        result = db.execute(
            subscribers.delete().where(
                subscribers.c.status == PENDING, subscribers.c.updated_at < before
            )
        )
        return result.rowcount
