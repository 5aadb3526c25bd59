"""Hands out an edition's deliveries to send and records how each went: pages and batches,
the claim on each message before it goes (the engine's hot path), the partners' rows,
and the suppression of an address that bounced for good."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa

from bulletin.store.database import deliveries, subscribers, suppressions
from bulletin.store.ledger.attempts import INSERT, Attempt, add
from bulletin.store.statuses import Channel, DeliveryStatus, SubscriberStatus

PENDING, SENDING = DeliveryStatus.PENDING, DeliveryStatus.SENDING


@dataclass(frozen=True)
class Pending:
    id: int
    channel: str
    target: str
    recipient: str
    attempts: int
    name: str = ""
    language: str = ""  # the subscriber's, for the edition's variant in their language


@dataclass(frozen=True)
class Batch:
    """A slice of one edition's deliveries, by ledger id: what one batch task sends."""

    number: int
    first_id: int
    last_id: int
    unsettled: int = 0  # pending or in flight when the batches were cut


def batches(db: sa.Connection, edition_id: str, size: int) -> list[Batch]:
    """The edition's email deliveries cut into batches of `size` by ledger id, leaving out
    those with nothing left to send (partners are sent once, by the run's driver).

    The cut counts every delivery of the edition, sent or not, so it is the same each time:
    a retried run's batches are the first run's, and their locks (`locks.batch_lock`) keep a
    batch that a lost worker may still be sending from being sent again beside it.
    """
    number = ((sa.func.row_number().over(order_by=deliveries.c.id) - 1) // size).label("number")
    unsettled = sa.case((deliveries.c.status.in_((PENDING, SENDING)), 1), else_=0)
    cut = (
        sa.select(deliveries.c.id, number, unsettled.label("unsettled"))
        .where(deliveries.c.edition_id == edition_id, deliveries.c.channel == Channel.EMAIL)
        .subquery()
    )
    rows = db.execute(
        sa.select(cut.c.number, sa.func.min(cut.c.id), sa.func.max(cut.c.id),
                  sa.func.sum(cut.c.unsettled))
        .group_by(cut.c.number)
        .order_by(cut.c.number)
    )  # fmt: skip
    return [Batch(int(r[0]), r[1], r[2], int(r[3])) for r in rows if r[3]]


def _in(batch: Batch | None, channel: str | None = None) -> list[sa.ColumnElement[bool]]:
    """The conditions for a batch's rows (batches are email only) or for one channel."""
    where = [] if channel is None else [deliveries.c.channel == channel]
    if batch is None:
        return where
    return [*where, deliveries.c.channel == Channel.EMAIL, deliveries.c.id >= batch.first_id,
            deliveries.c.id <= batch.last_id]  # fmt: skip


def reset_in_flight(
    db: sa.Connection, edition_id: str, batch: Batch | None = None, channel: str | None = None
) -> int:
    """Messages a dead run left in flight are due again: at most one per connection."""
    result = db.execute(
        deliveries.update()
        .where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.status == SENDING,
            *_in(batch, channel),
        )
        .values(status=PENDING, next_attempt_at=None)
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
            subscribers.c.language,
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
            deliveries.c.status == PENDING,
            deliveries.c.id > after_id,
            *_in(batch, channel),
        )
        .order_by(deliveries.c.id)
        .limit(limit)
    )
    return [Pending(r[0], r[1], r[2], r[3], r[4], r[5] or "", r[6] or "") for r in rows]


def count_pending(
    db: sa.Connection, edition_id: str, batch: Batch | None = None, channel: str | None = None
) -> int:
    count = db.scalar(
        sa.select(sa.func.count()).where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.status == PENDING,
            *_in(batch, channel),
        )
    )
    return count or 0


# --- The delivery engine's hot path ----------------------------------------------------


class Settled(Protocol):
    """How one attempt at a delivery went (the delivery engine's outcome)."""

    status: str  # a DeliveryStatus: sent, failed, skipped, or pending (due again)
    detail: str | None
    message_id: str | None
    retry_at: dt.datetime | None
    suppress: bool  # a permanent bounce: the address gets no further editions
    permanent: bool  # the server refused for good: trying again cannot help


class Claims:
    """The run's connection to the ledger, shared by its workers: each claims a message
    before it goes and records how its last one went, in one transaction.

    This is the per-message hot path: plain SQL on a held connection, no pool checkout
    and no statement building per message. What several workers ask for at once goes in
    one transaction (a group commit): each still waits for the commit that holds its claim
    before its message goes, so nothing is sent unclaimed, and a crash loses at most each
    worker's last outcome, as with one transaction each; but the workers neither wait on
    each other's write locks nor pay a commit each.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.raw = engine.raw_connection()  # the driver's own connection, from the pool
        self.cursor = self.raw.cursor()
        # Only the driver's placeholder is put into the SQL; every value is a parameter.
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._outcome = (
            "UPDATE deliveries SET status=?, attempts=?, detail=?, message_id=?, "
            "next_attempt_at=?, updated_at=? WHERE id=?"
        ).replace("?", mark)
        self._attempt = INSERT.replace("?", mark)  # kept beside the outcome
        # The claim: only a pending row is taken, so two runs never both send one message.
        self._sending = (
            "UPDATE deliveries SET status='sending', updated_at=? WHERE id=? AND status='pending'"
        ).replace("?", mark)
        self._sqlite = engine.dialect.name == "sqlite"
        self._turn = threading.Condition()
        self._queued: list[_Request] = []
        self._writing = False  # a worker is writing a group now; the others queue

    def _stamp(self, when: dt.datetime | None) -> dt.datetime | str | None:
        # SQLAlchemy keeps SQLite times as naive UTC text; PostgreSQL takes them as they are.
        if when is None or not self._sqlite:
            return when
        return when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")

    def record(
        self,
        previous: tuple[Pending, Settled] | None,
        sending: Pending | None,
        when: dt.datetime,
    ) -> bool:
        """One transaction: the last message's outcome, and the next one marked in flight
        (with what other workers asked for meanwhile). Returns once it is committed.

        False when `sending` was no longer pending: someone else has claimed it.
        """
        if previous is None and sending is None:
            return True
        request = _Request(previous, sending, when)
        group: list[_Request] = []
        with self._turn:
            self._queued.append(request)
            while self._writing and not request.done:
                self._turn.wait()
            if not request.done:  # nobody is writing: this worker writes the whole queue
                self._writing = True
                group, self._queued = self._queued, []
        if group:
            try:
                self._write(group)
            finally:
                with self._turn:
                    self._writing = False
                    for each in group:
                        each.done = True
                    self._turn.notify_all()
        if request.error is not None:
            raise request.error
        if previous is not None and previous[1].suppress:
            with self.engine.begin() as db:
                suppress(db, previous[0].recipient, previous[1].detail or "", when)
        return request.claimed

    def _write(self, group: list[_Request]) -> None:
        try:
            for request in group:
                stamp = self._stamp(request.when)
                if request.previous is not None:
                    row, outcome = request.previous
                    # A plain str: sqlite3 adapts a str subclass (a DeliveryStatus) more slowly.
                    self.cursor.execute(
                        self._outcome,
                        (str(outcome.status), row.attempts + 1, outcome.detail,
                         outcome.message_id, self._stamp(outcome.retry_at), stamp, row.id),
                    )  # fmt: skip
                    self.cursor.execute(
                        self._attempt,
                        (row.id, stamp, str(outcome.status), outcome.detail, outcome.permanent),
                    )
                if request.sending is not None:
                    self.cursor.execute(self._sending, (stamp, request.sending.id))
                    request.claimed = self.cursor.rowcount == 1
            self.raw.commit()
        except BaseException as exc:
            for request in group:  # first: a failed rollback must not leave one unsaid
                request.error = exc
            self.raw.rollback()

    def release(self, row: Pending) -> None:
        """Give back the claim on a message that never left: it is due again."""
        with self.engine.begin() as db:
            db.execute(
                deliveries.update()
                .where(deliveries.c.id == row.id, deliveries.c.status == SENDING)
                .values(status=PENDING)
            )

    def close(self) -> None:
        self.cursor.close()
        self.raw.close()


@dataclass
class _Request:
    """One worker's part of a group commit, and how it went."""

    previous: tuple[Pending, Settled] | None
    sending: Pending | None
    when: dt.datetime
    done: bool = False
    claimed: bool = True
    error: BaseException | None = None


def suppress(db: sa.Connection, address: str, reason: str, when: dt.datetime) -> None:
    """The address bounced for good: no further editions go to it, on any list."""
    address = address.lower()
    exists = db.execute(sa.select(suppressions.c.email).where(suppressions.c.email == address))
    if exists.first() is None:
        db.execute(
            suppressions.insert().values(
                email=address, reason=reason, edition_id=None, created_at=when
            )
        )
    db.execute(
        subscribers.update()
        .where(sa.func.lower(subscribers.c.email) == address)
        .values(status=SubscriberStatus.SUPPRESSED, updated_at=when)
    )


def suppressed(db: sa.Connection) -> set[str]:
    """Every address that bounced for good, lowercased."""
    return set(db.scalars(sa.select(suppressions.c.email)))


# --- The partner phase: one row per partner and edition ----------------------------------


@dataclass(frozen=True)
class PartnerRow:
    id: int
    target: str  # the partner's key
    attempts: int


def pending_partners(db: sa.Connection, edition_id: str) -> list[PartnerRow]:
    """The edition's partners not sent yet."""
    rows = db.execute(
        sa.select(deliveries.c.id, deliveries.c.target, deliveries.c.attempts)
        .where(
            deliveries.c.edition_id == edition_id,
            deliveries.c.channel == Channel.PARTNER,
            deliveries.c.status == PENDING,
        )
        .order_by(deliveries.c.id)
    )
    return [PartnerRow(*r) for r in rows]


def mark_sending(db: sa.Connection, rows: Iterable[PartnerRow], when: dt.datetime) -> None:
    """The partners' rows are in flight: a run killed now sends them again."""
    db.execute(
        deliveries.update()
        .where(deliveries.c.id.in_([row.id for row in rows]))
        .values(status=SENDING, updated_at=when)
    )


def record_partners(
    db: sa.Connection,
    outcomes: Iterable[tuple[PartnerRow, Settled, int, Sequence[Attempt]]],
    when: dt.datetime,
) -> None:
    """How each partner's delivery went, after `tried` attempts in all; the attempts
    before the last (`earlier`) and the last are kept in its history."""
    for row, outcome, tried, earlier in outcomes:
        last = Attempt(row.id, when, outcome.status, outcome.detail, outcome.permanent)
        add(db, [*earlier, last])
        db.execute(
            deliveries.update()
            .where(deliveries.c.id == row.id)
            .values(
                status=outcome.status,
                attempts=tried,
                detail=outcome.detail,
                message_id=outcome.message_id,
                next_attempt_at=None,
                updated_at=when,
            )
        )
