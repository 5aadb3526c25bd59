"""Keeps every attempt at a delivery (when, what it came to, the server's reply, whether it
was final), and reads an edition's failures back with why each is retryable or final."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.store.database import deliveries, delivery_attempts
from bulletin.store.statuses import Channel, DeliveryStatus

#: The hot path's insert (`Claims.record`), in the driver's own SQL: "?" is its placeholder.
INSERT = (
    "INSERT INTO delivery_attempts (delivery_id, attempted_at, status, detail, permanent) "
    "VALUES (?, ?, ?, ?, ?)"
)
#: What `detail` of a failure starts with when temporary failures outlasted the retries.
GAVE_UP = "gave up after "


@dataclass(frozen=True)
class Attempt:
    """One attempt at one delivery, as the partner phase records it."""

    delivery_id: int
    at: dt.datetime
    status: str
    detail: str | None
    permanent: bool = False


def add(db: sa.Connection, attempts: Iterable[Attempt]) -> None:
    """Keep these attempts in the delivery's history."""
    rows = [
        {"delivery_id": a.delivery_id, "attempted_at": a.at, "status": str(a.status),
         "detail": a.detail, "permanent": a.permanent}
        for a in attempts
    ]  # fmt: skip
    if rows:
        db.execute(delivery_attempts.insert(), rows)


@dataclass(frozen=True)
class Failure:
    """A delivery of an edition that failed for good, and whether trying again could help."""

    channel: str  # email | partner
    target: str  # the list or partner key
    recipient: str
    reason: str  # the server's reply
    retryable: bool
    why: str  # why it is retryable or final, in a sentence
    attempts: int  # attempts kept in its history

    def as_json(self) -> dict[str, object]:
        email = self.channel == Channel.EMAIL
        return {
            "channel": self.channel,
            "list": self.target if email else None,
            "partner": None if email else self.target,
            "recipient": self.recipient,
            "reason": self.reason,
            "retryable": self.retryable,
            "why": self.why,
            "attempts": self.attempts,
        }


def failures(db: sa.Connection, edition_id: str) -> list[Failure]:
    """Every failed delivery of the edition, by list or partner then recipient."""
    last = (
        sa.select(
            delivery_attempts.c.delivery_id,
            sa.func.max(delivery_attempts.c.id).label("last_id"),
            sa.func.count().label("tries"),
        )
        .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
        .where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.status == DeliveryStatus.FAILED,
            delivery_attempts.c.status != DeliveryStatus.SKIPPED,
        )
        .group_by(delivery_attempts.c.delivery_id)
        .subquery()
    )
    rows = db.execute(
        sa.select(
            deliveries.c.channel,
            deliveries.c.target,
            deliveries.c.recipient,
            deliveries.c.detail,
            delivery_attempts.c.permanent,
            last.c.tries,
        )
        .select_from(
            deliveries.outerjoin(last, last.c.delivery_id == deliveries.c.id).outerjoin(
                delivery_attempts, delivery_attempts.c.id == last.c.last_id
            )
        )
        .where(deliveries.c.edition_id == edition_id, deliveries.c.status == DeliveryStatus.FAILED)
        .order_by(deliveries.c.channel, deliveries.c.target, deliveries.c.id)
    )
    found = []
    for channel, target, recipient, detail, permanent, tries in rows:
        reason = detail or ""
        if permanent is None:  # sent before attempts were kept: the reply says which
            permanent = not reason.startswith(GAVE_UP)
        found.append(
            Failure(channel, target, recipient, reason, not permanent,
                    _why(channel, bool(permanent)), int(tries or 0))
        )  # fmt: skip
    return found


def _why(channel: str, permanent: bool) -> str:
    if channel == Channel.EMAIL and permanent:
        return (
            "final: the server refused the address for good (5xx); it is suppressed and "
            "gets nothing more, resend included"
        )
    if permanent:
        return (
            "final: the partner refused the edition (4xx); once the partner has fixed the "
            "cause, `bulletin resend` sends it again"
        )
    return (
        "retryable: temporary failures (4xx, timeouts, dropped connections) outlasted "
        "the retries; `bulletin resend` tries again"
    )


def scrub(db: sa.Connection, address: str, stand_in: str) -> None:
    """The address is forgotten: replies quoting it, in the history of the rows now
    carrying `stand_in`, quote the stand-in instead."""
    db.execute(
        delivery_attempts.update()
        .where(
            delivery_attempts.c.delivery_id.in_(
                sa.select(deliveries.c.id).where(deliveries.c.recipient == stand_in)
            )
        )
        .values(
            detail=sa.func.replace(
                sa.func.coalesce(delivery_attempts.c.detail, ""), address, stand_in
            )
        )
    )


def history(db: sa.Connection, delivery_id: int) -> list[Attempt]:
    """A delivery's attempts, oldest first."""
    rows = db.execute(
        sa.select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id == delivery_id)
        .order_by(delivery_attempts.c.id)
    )
    return [Attempt(r.delivery_id, r.attempted_at, r.status, r.detail, r.permanent) for r in rows]
