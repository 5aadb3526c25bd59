"""Owns the inbound_events table: what each message that came back was and what bulletin
did; a message is recorded once (its digest is the key), and the temporary bounces of an
address within a window are counted here."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.store.database import inbound_events


def message_key(data: bytes) -> str:
    """The message's identity: the same bytes seen twice are one message."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Event:
    """One processed message. `outcome`: suppressed, counted, unsubscribed, unmatched,
    ignored, or error."""

    kind: str
    outcome: str
    email: str | None = None
    list_name: str | None = None
    edition_id: str | None = None
    status: str | None = None
    permanent: bool | None = None
    detail: str = ""


def seen(db: sa.Connection, key: str) -> bool:
    found = db.execute(
        sa.select(inbound_events.c.id).where(inbound_events.c.message_key == key)
    ).first()
    return found is not None


def record(db: sa.Connection, key: str, event: Event, when: dt.datetime) -> None:
    db.execute(
        inbound_events.insert().values(
            message_key=key,
            kind=event.kind,
            outcome=event.outcome,
            email=event.email,
            list_name=event.list_name,
            edition_id=event.edition_id,
            status=event.status,
            permanent=event.permanent,
            detail=event.detail[:1000],
            received_at=when,
        )
    )


def soft_bounces(db: sa.Connection, email: str, since: dt.datetime) -> int:
    """The temporary bounces recorded for `email` since `since`."""
    count = db.scalar(
        sa.select(sa.func.count())
        .select_from(inbound_events)
        .where(
            inbound_events.c.email == email.lower(),
            inbound_events.c.kind == "bounce",
            inbound_events.c.permanent.is_not(True),
            inbound_events.c.outcome.in_(("counted", "suppressed")),
            inbound_events.c.received_at >= since,
        )
    )
    return int(count or 0)
