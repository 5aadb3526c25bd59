"""Records editions and every delivery, so that nothing is sent twice and a rerun resumes."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.config import Config
from bulletin.content.entries import Entry
from bulletin.store.database import deliveries, edition_entries, editions, subscribers, suppressions

_LOCK_KEY = 0x62756C6C  # "bull": the PostgreSQL advisory lock of delivery runs
_BATCH_LOCK_CLASS = 0x62756C62  # "bulb": with a batch's first id, the lock of one batch


@dataclass(frozen=True)
class Pending:
    id: int
    channel: str
    target: str
    recipient: str
    attempts: int
    name: str = ""


@dataclass(frozen=True)
class Batch:
    """A slice of one edition's deliveries, by ledger id: what one batch task sends."""

    number: int
    first_id: int
    last_id: int
    unsettled: int = 0  # pending or in flight when the batches were cut


@dataclass(frozen=True)
class EditionRecord:
    id: str
    created_at: dt.datetime
    status: str
    slugs: tuple[str, ...]


def published_slugs(db: sa.Connection) -> set[str]:
    """Every entry that went out in an edition, finished or being sent."""
    return set(db.scalars(sa.select(edition_entries.c.slug)))


def unfinished(db: sa.Connection) -> EditionRecord | None:
    """The edition a crash or failure left open, which the next publish resumes."""
    row = db.execute(
        sa.select(editions).where(editions.c.status != "done").order_by(editions.c.created_at)
    ).first()
    return _record(db, row) if row else None


def all_editions(db: sa.Connection) -> list[EditionRecord]:
    """Every edition, newest first."""
    rows = db.execute(sa.select(editions).order_by(editions.c.created_at.desc(), editions.c.id))
    return [_record(db, row) for row in rows]


def _record(db: sa.Connection, row: sa.Row) -> EditionRecord:
    slugs = db.scalars(
        sa.select(edition_entries.c.slug)
        .where(edition_entries.c.edition_id == row.id)
        .order_by(edition_entries.c.position)
    )
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    return EditionRecord(row.id, created, row.status, tuple(slugs))


def next_edition_id(db: sa.Connection, today: dt.date) -> str:
    """`YYYY-MM-DD-N`: the date of publishing and the edition's number that day."""
    prefix = today.isoformat()
    taken = set(db.scalars(sa.select(editions.c.id).where(editions.c.id.like(prefix + "-%"))))
    number = 1
    while f"{prefix}-{number}" in taken:
        number += 1
    return f"{prefix}-{number}"


def prepare(
    db: sa.Connection,
    edition_id: str,
    entries: Sequence[Entry],
    recipients: Iterable[tuple[str, str, str]],
    now: dt.datetime,
) -> None:
    """Record the edition with its entries and frozen recipients, all or nothing."""
    db.execute(editions.insert().values(id=edition_id, created_at=now, status="prepared"))
    db.execute(
        edition_entries.insert(),
        [
            {"edition_id": edition_id, "slug": e.slug, "position": i, "approval": e.approval}
            for i, e in enumerate(entries)
        ],
    )
    rows = [
        {"edition_id": edition_id, "channel": channel, "target": target, "recipient": recipient,
         "status": "pending", "attempts": 0, "updated_at": now}
        for channel, target, recipient in recipients
    ]  # fmt: skip
    if rows:
        db.execute(deliveries.insert(), rows)


def freeze_subscribers(db: sa.Connection, edition_id: str, list_key: str, now: dt.datetime) -> None:
    """Copy a list's active, unsuppressed subscribers into the ledger, inside the database:
    one statement, however long the list, and nothing held in memory."""
    chosen = (
        sa.select(
            sa.literal(edition_id),
            sa.literal("email"),
            sa.literal(list_key),
            subscribers.c.email,
            sa.literal("pending"),
            sa.literal(0),
            sa.literal(now, sa.DateTime(timezone=True)),
        )
        .where(
            subscribers.c.list_name == list_key,
            subscribers.c.status == "active",
            ~sa.func.lower(subscribers.c.email).in_(sa.select(suppressions.c.email)),
        )
        .order_by(subscribers.c.id)
    )
    db.execute(
        deliveries.insert().from_select(
            ["edition_id", "channel", "target", "recipient", "status", "attempts", "updated_at"],
            chosen,
        )
    )


@contextlib.contextmanager
def delivery_lock(engine: sa.Engine, config: Config) -> Iterator[None]:
    """Held while a run delivers: a second run waits, then finds nothing left to send.

    The lock dies with its holder (a file lock on SQLite, a session advisory lock on
    PostgreSQL), so a killed run never blocks the next one.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as db:
            db.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            try:
                yield
            finally:
                db.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        return
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with open(config.state_dir / "delivery.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def batches(db: sa.Connection, edition_id: str, size: int) -> list[Batch]:
    """The edition's email deliveries cut into batches of `size` by ledger id, leaving out
    those with nothing left to send (partners are sent once, by the run's driver).

    The cut counts every delivery of the edition, sent or not, so it is the same each time:
    a retried run's batches are the first run's, and their locks (`batch_lock`) keep a
    batch that a lost worker may still be sending from being sent again beside it.
    """
    number = ((sa.func.row_number().over(order_by=deliveries.c.id) - 1) // size).label("number")
    unsettled = sa.case((deliveries.c.status.in_(("pending", "sending")), 1), else_=0)
    cut = (
        sa.select(deliveries.c.id, number, unsettled.label("unsettled"))
        .where(deliveries.c.edition_id == edition_id, deliveries.c.channel == "email")
        .subquery()
    )
    rows = db.execute(
        sa.select(cut.c.number, sa.func.min(cut.c.id), sa.func.max(cut.c.id),
                  sa.func.sum(cut.c.unsettled))
        .group_by(cut.c.number)
        .order_by(cut.c.number)
    )  # fmt: skip
    return [Batch(int(r[0]), r[1], r[2], int(r[3])) for r in rows if r[3]]


@contextlib.contextmanager
def batch_lock(engine: sa.Engine, config: Config, batch: Batch) -> Iterator[None]:
    """Held while a task sends one batch: a second task for the same batch (a retry while
    a lost worker still holds it) waits, then finds nothing left to send.

    Like `delivery_lock`, it dies with its holder: a killed worker's session ends, and
    the retry sends what it left.
    """
    if engine.dialect.name == "postgresql":
        key = {"cls": _BATCH_LOCK_CLASS, "obj": batch.first_id & 0x7FFFFFFF}
        with engine.connect() as db:
            db.execute(sa.text("SELECT pg_advisory_lock(:cls, :obj)"), key)
            db.commit()
            try:
                yield
            finally:
                db.execute(sa.text("SELECT pg_advisory_unlock(:cls, :obj)"), key)
                db.commit()
        return
    folder = config.state_dir / "batches"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{batch.first_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _in(batch: Batch | None, channel: str | None = None) -> list[sa.ColumnElement[bool]]:
    """The conditions for a batch's rows (batches are email only) or for one channel."""
    where = [] if channel is None else [deliveries.c.channel == channel]
    if batch is None:
        return where
    return [*where, deliveries.c.channel == "email", deliveries.c.id >= batch.first_id,
            deliveries.c.id <= batch.last_id]  # fmt: skip


def reset_in_flight(
    db: sa.Connection, edition_id: str, batch: Batch | None = None, channel: str | None = None
) -> int:
    """Messages a dead run left in flight are due again: at most one per connection."""
    result = db.execute(
        deliveries.update()
        .where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.status == "sending",
            *_in(batch, channel),
        )
        .values(status="pending", next_attempt_at=None)
    )
    return result.rowcount


def pending_page(
    db: sa.Connection,
    edition_id: str,
    after_id: int,
    limit: int,
    batch: Batch | None = None,
    channel: str | None = None,
) -> list[Pending]:
    """The next `limit` deliveries still to send, after `after_id`, with each name."""
    rows = db.execute(
        sa.select(
            deliveries.c.id,
            deliveries.c.channel,
            deliveries.c.target,
            deliveries.c.recipient,
            deliveries.c.attempts,
            subscribers.c.name,
        )
        .select_from(
            deliveries.outerjoin(
                subscribers,
                sa.and_(
                    subscribers.c.list_name == deliveries.c.target,
                    subscribers.c.email == deliveries.c.recipient,
                ),
            )
        )
        .where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.status == "pending",
            deliveries.c.id > after_id,
            *_in(batch, channel),
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [Pending(r[0], r[1], r[2], r[3], r[4], r[5] or "") for r in rows]


def count_pending(
    db: sa.Connection, edition_id: str, batch: Batch | None = None, channel: str | None = None
) -> int:
    return db.scalar(
        sa.select(sa.func.count()).where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.status == "pending",
            *_in(batch, channel),
        )
    )


def counts(db: sa.Connection, edition_id: str) -> dict[tuple[str, str, str], int]:
    """(channel, target, status) → number of deliveries."""
    rows = db.execute(
        sa.select(deliveries.c.channel, deliveries.c.target, deliveries.c.status, sa.func.count())
        .where(deliveries.c.edition_id == edition_id)
        .group_by(deliveries.c.channel, deliveries.c.target, deliveries.c.status)
    )
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def failures(db: sa.Connection, edition_id: str, limit: int = 1000) -> list[tuple[str, str, str]]:
    """(target, recipient, reason) of each delivery that failed for good."""
    rows = db.execute(
        sa.select(deliveries.c.target, deliveries.c.recipient, deliveries.c.detail)
        .where(deliveries.c.edition_id == edition_id, deliveries.c.status == "failed")
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [(r.target, r.recipient, r.detail or "") for r in rows]


def finish(db: sa.Connection, edition_id: str, now: dt.datetime) -> None:
    db.execute(
        editions.update().where(editions.c.id == edition_id).values(status="done", finished_at=now)
    )
