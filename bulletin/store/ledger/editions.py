"""Records each edition with its entries and frozen recipients, reads them back, closes them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulletin.content.approval import approved_hash
from bulletin.content.entries import Entry
from bulletin.store.database import deliveries, edition_entries, editions, subscribers, suppressions
from bulletin.store.statuses import Channel, DeliveryStatus, EditionStatus, SubscriberStatus

PENDING, FAILED = DeliveryStatus.PENDING, DeliveryStatus.FAILED


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
        sa.select(editions)
        .where(editions.c.status != EditionStatus.DONE)
        .order_by(editions.c.created_at)
    ).first()
    return _record(db, row) if row else None


def all_editions(db: sa.Connection) -> list[EditionRecord]:
    """Every edition, newest first: two queries, however many editions."""
    rows = db.execute(sa.select(editions).order_by(editions.c.created_at.desc(), editions.c.id))
    slugs: dict[str, list[str]] = {}
    for edition_id, slug in db.execute(
        sa.select(edition_entries.c.edition_id, edition_entries.c.slug).order_by(
            edition_entries.c.edition_id, edition_entries.c.position
        )
    ):
        slugs.setdefault(edition_id, []).append(slug)
    return [
        EditionRecord(row.id, _aware(row.created_at), row.status, tuple(slugs.get(row.id, ())))
        for row in rows
    ]


def in_brief(db: sa.Connection) -> tuple[object, ...]:
    """What the ledger holds of its editions, in brief: each edition's id, time and status,
    and how many entries they carry. Enough to tell the ledger of any publish, resend or
    close from the one before: an edition's entries are written with it and never
    changed (`prepare`)."""
    rows = db.execute(
        sa.select(editions.c.id, editions.c.created_at, editions.c.status).order_by(editions.c.id)
    )
    carried = db.scalar(sa.select(sa.func.count()).select_from(edition_entries))
    return (*(tuple(row) for row in rows), carried)


def _record(db: sa.Connection, row: sa.Row[Any]) -> EditionRecord:
    slugs = db.scalars(
        sa.select(edition_entries.c.slug)
        .where(edition_entries.c.edition_id == row.id)
        .order_by(edition_entries.c.position)
    )
    return EditionRecord(row.id, _aware(row.created_at), row.status, tuple(slugs))


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


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
    db.execute(
        editions.insert().values(id=edition_id, created_at=now, status=EditionStatus.PREPARED)
    )
    db.execute(
        edition_entries.insert(),
        [
            {"edition_id": edition_id, "slug": e.slug, "position": i, "approval": approved_hash(e)}
            for i, e in enumerate(entries)
        ],
    )
    rows = [
        {"edition_id": edition_id, "channel": channel, "target": target, "recipient": recipient,
         "status": PENDING, "attempts": 0, "updated_at": now}
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
            sa.literal(Channel.EMAIL.value),
            sa.literal(list_key),
            subscribers.c.email,
            sa.literal(PENDING.value),
            sa.literal(0),
            sa.literal(now, sa.DateTime(timezone=True)),
        )
        .where(
            subscribers.c.list_name == list_key,
            subscribers.c.status == SubscriberStatus.ACTIVE,
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
        .where(deliveries.c.edition_id == edition_id, deliveries.c.status == FAILED)
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [(r.target, r.recipient, r.detail or "") for r in rows]


def finish(db: sa.Connection, edition_id: str, now: dt.datetime) -> None:
    db.execute(
        editions.update()
        .where(editions.c.id == edition_id)
        .values(status=EditionStatus.DONE, finished_at=now)
    )
