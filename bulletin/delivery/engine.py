"""Sends an edition's pending deliveries over a pool of connections, once each, with retries.

The ledger is the truth. Each connection marks a message `sending` before it goes and
`sent` (or failed, or due again) after, in the same transaction as the next message's
`sending`: one commit per message, and a run killed at any moment leaves at most one
message per connection in flight. A new run takes the site's delivery lock, so two runs
never send at once, and sends those in-flight messages again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from bulletin.delivery.transports import Deferred, Sent, Transport, TransportFactory
from bulletin.errors import TransportUnavailable
from bulletin.mail.message import Message
from bulletin.store.database import deliveries, subscribers, suppressions
from bulletin.store.ledger import Pending

Progress = Callable[[int, int], None]
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class RetryPolicy:
    """Temporary failures are tried again `attempts` times in all, waiting longer each time."""

    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return base * random.uniform(0.8, 1.2)  # noqa: S311 -- jitter, not secrecy


class SendRate:
    """The most messages a run sends per second, over all its connections (a token bucket
    they share); 0 means unlimited."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._lock = threading.Lock()
        self._next = time.monotonic()

    def wait(self) -> None:
        if self.per_second <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + 1 / self.per_second
        if start > now:
            time.sleep(start - now)


@dataclass
class Outcome:
    status: str  # sent | failed | skipped | pending (due again) | elsewhere (not ours)
    detail: str | None = None
    message_id: str | None = None
    retry_at: dt.datetime | None = None
    suppress: bool = False


@dataclass
class Job:
    """What a run must send: where its ledger rows come from and how to make messages."""

    rows: Callable[[int, int], list[Pending]]  # (after id, limit) → the next page
    total: int
    make: Callable[[Pending, dt.datetime], tuple[Message | None, Outcome | None]]
    transports: TransportFactory  # each worker opens its own email transport
    connections: int = 1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate: SendRate = field(default_factory=lambda: SendRate(0))
    page: int = 2000


_DONE = None  # tells a worker to stop


def run(engine: sa.Engine, job: Job, progress: Progress | None = None, clock: Clock = None) -> None:
    """Send every row of `job` until each is sent, skipped or failed for good.

    Rows stream in pages, so memory stays flat however long the list; a pool of
    `job.connections` workers, each with its own connections, sends them.
    """
    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    work: queue.Queue[Pending | None] = queue.Queue(maxsize=job.page)
    retries: list[tuple[float, int, Pending]] = []
    state = threading.Condition()
    counters = {"done": 0, "outstanding": 0}
    stop = threading.Event()
    errors: list[BaseException] = []

    def finished(row: Pending, outcome: Outcome, when: dt.datetime) -> None:
        with state:
            if outcome.status == "pending":
                delay = (outcome.retry_at - when).total_seconds() if outcome.retry_at else 0
                heapq.heappush(retries, (time.monotonic() + delay, row.id, _retried(row)))
            else:
                counters["done"] += 1
                if progress:
                    progress(counters["done"], job.total)
            counters["outstanding"] -= 1
            state.notify_all()

    def worker() -> None:
        ledger = _LedgerWriter(engine)
        transports: dict[str, Transport] = {}
        previous: tuple[Pending, Outcome] | None = None
        row: Pending | None = None
        try:
            while not stop.is_set():
                try:
                    row = work.get_nowait()
                except queue.Empty:
                    # Nothing queued: record the last outcome now rather than with the
                    # next message, so the run can see that everything is done.
                    if previous is not None:
                        when = clock()
                        ledger.record(previous, None, when)
                        finished(*previous, when)
                        previous = None
                    try:
                        row = work.get(timeout=0.2)
                    except queue.Empty:
                        continue
                if row is _DONE:
                    row = None
                    break
                when = clock()
                message, outcome = job.make(row, when)
                claimed = ledger.record(previous, row if outcome is None else None, when)
                if previous is not None:
                    finished(*previous, when)
                previous = None
                if not claimed:  # another run sent it or holds it: not ours to send
                    finished(row, Outcome("elsewhere"), when)
                    row = None
                    continue
                if outcome is None:
                    assert message is not None
                    outcome = _attempt(job, transports, message, row, when)
                previous = (row, outcome)
                row = None
            when = clock()
            ledger.record(previous, None, when)
            if previous is not None:
                finished(*previous, when)
        except TransportUnavailable as exc:
            errors.append(exc)
            stop.set()
            # The message in hand never left: it is due again, as are the unsent ones.
            ledger.record(previous, None, clock())
            if row is not None:
                _release(engine, row)
        except BaseException as exc:  # a crash: what is recorded stays; nothing is lost
            errors.append(exc)
            stop.set()
        finally:
            ledger.close()
            for transport in transports.values():
                with contextlib.suppress(Exception):  # closing politely is best effort
                    transport.close()
            with state:
                state.notify_all()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(job.connections)]
    for thread in threads:
        thread.start()

    def put(row: Pending) -> bool:
        with state:
            counters["outstanding"] += 1
        while not stop.is_set():
            try:
                work.put(row, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def due_retries() -> list[Pending]:
        with state:
            now = time.monotonic()
            ready = []
            while retries and retries[0][0] <= now:
                ready.append(heapq.heappop(retries)[2])
            return ready

    try:
        last_id = 0
        while not stop.is_set():
            page = job.rows(last_id, job.page)
            if not page:
                break
            last_id = page[-1].id
            for row in [*page, *due_retries()]:
                if not put(row):
                    break
        while not stop.is_set():
            for row in due_retries():
                put(row)
            with state:
                if counters["outstanding"] == 0 and not retries:
                    break
                wait = min(0.5, retries[0][0] - time.monotonic()) if retries else 0.5
                state.wait(max(0.01, wait))
    finally:
        for _ in threads:
            while True:
                try:
                    work.put(_DONE, timeout=0.2)
                    break
                except queue.Full:
                    if stop.is_set():
                        with contextlib.suppress(queue.Empty):
                            work.get_nowait()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def _release(engine: sa.Engine, row: Pending) -> None:
    with engine.begin() as db:
        db.execute(
            deliveries.update()
            .where(deliveries.c.id == row.id, deliveries.c.status == "sending")
            .values(status="pending")
        )


def _retried(row: Pending) -> Pending:
    return Pending(row.id, row.channel, row.target, row.recipient, row.attempts + 1, row.name)


def _attempt(job: Job, transports: dict, message: Message, row: Pending, when) -> Outcome:
    transport = transports.get(row.channel)
    if transport is None:
        transport = transports[row.channel] = job.transports.email()
    job.rate.wait()
    # TransportUnavailable passes: the whole run stops; this message is due again.
    sent = transport.send(message)
    if sent.__class__ is Sent:
        return Outcome("sent", message_id=sent.message_id or None)
    attempt = row.attempts + 1
    if sent.__class__ is not Deferred:  # rejected for good
        return Outcome("failed", sent.detail, suppress=row.channel == "email")
    if attempt >= job.retry.attempts:
        return Outcome("failed", f"gave up after {attempt} attempts: {sent.detail}")
    delay = sent.retry_after if sent.retry_after is not None else job.retry.delay(attempt)
    return Outcome("pending", sent.detail, retry_at=when + dt.timedelta(seconds=delay))


class _LedgerWriter:
    """A worker's own connection to the ledger, with its two statements ready to run.

    This is the per-message hot path: plain SQL on a held connection, no pool checkout
    and no statement building per message.
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
        # The claim: only a pending row is taken, so two runs never both send one message.
        self._sending = (
            "UPDATE deliveries SET status='sending', updated_at=? WHERE id=? AND status='pending'"
        ).replace("?", mark)
        self._sqlite = engine.dialect.name == "sqlite"

    def _stamp(self, when: dt.datetime | None):
        # SQLAlchemy keeps SQLite times as naive UTC text; PostgreSQL takes them as they are.
        if when is None or not self._sqlite:
            return when
        return when.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")

    def record(
        self,
        previous: tuple[Pending, Outcome] | None,
        sending: Pending | None,
        when: dt.datetime,
    ) -> bool:
        """One transaction: the last message's outcome, and the next one marked in flight.

        False when `sending` was no longer pending: someone else has claimed it.
        """
        claimed = True
        if previous is None and sending is None:
            return claimed
        stamp = self._stamp(when)
        try:
            if previous is not None:
                row, outcome = previous
                self.cursor.execute(
                    self._outcome,
                    (outcome.status, row.attempts + 1, outcome.detail, outcome.message_id,
                     self._stamp(outcome.retry_at), stamp, row.id),
                )  # fmt: skip
            if sending is not None:
                self.cursor.execute(self._sending, (stamp, sending.id))
                claimed = self.cursor.rowcount == 1
            self.raw.commit()
        except BaseException:
            self.raw.rollback()
            raise
        if previous is not None and previous[1].suppress:
            with self.engine.begin() as db:
                _suppress(db, previous[0], previous[1], when)
        return claimed

    def close(self) -> None:
        self.cursor.close()
        self.raw.close()


def _suppress(db: sa.Connection, row: Pending, outcome: Outcome, when: dt.datetime) -> None:
    address = row.recipient.lower()
    exists = db.execute(sa.select(suppressions.c.email).where(suppressions.c.email == address))
    if exists.first() is None:
        db.execute(
            suppressions.insert().values(
                email=address, reason=outcome.detail or "", edition_id=None, created_at=when
            )
        )
    db.execute(
        subscribers.update()
        .where(sa.func.lower(subscribers.c.email) == address)
        .values(status="suppressed", updated_at=when)
    )
