"""Sends an edition's pending deliveries over a pool of connections, once each, with retries.

The ledger is the truth. Each connection marks a message `sending` before it goes and
`sent` (or failed, or due again) after, in the same transaction as the next message's
`sending` (the connections' transactions at one moment share a commit: `Claims`), and a
run killed at any moment leaves at most one message per connection in flight. A new run
takes the site's delivery lock, so two runs never send at once, and sends those in-flight
messages again.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from bulletin.store.ledger import Claims, Pending
from bulletin.store.statuses import Channel, DeliveryStatus

PENDING, SENT, FAILED = DeliveryStatus.PENDING, DeliveryStatus.SENT, DeliveryStatus.FAILED

Progress = Callable[[int, int], None]
Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class RetryPolicy:
    """Temporary failures are tried again `attempts` times in all, waiting longer each time."""

    attempts: int = 5
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_backoff_seconds, self.backoff_seconds * 2.0 ** (attempt - 1))
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
    permanent: bool = False  # refused for good: a retry, or a resend, cannot help


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
_ELSEWHERE = "elsewhere"  # an outcome never recorded: another run claimed the message


def run(
    engine: sa.Engine, job: Job, progress: Progress | None = None, clock: Clock | None = None
) -> None:
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
            if outcome.status == DeliveryStatus.PENDING:
                delay = (outcome.retry_at - when).total_seconds() if outcome.retry_at else 0
                heapq.heappush(retries, (time.monotonic() + delay, row.id, _retried(row)))
            else:
                counters["done"] += 1
                if progress:
                    progress(counters["done"], job.total)
            counters["outstanding"] -= 1
            state.notify_all()

    ledger = Claims(engine)  # shared: what the workers record at once goes in one commit

    def worker() -> None:
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
                    finished(row, Outcome(_ELSEWHERE), when)
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
                ledger.release(row)
        except BaseException as exc:  # a crash: what is recorded stays; nothing is lost
            errors.append(exc)
            stop.set()
        finally:
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
            last_id = max(row.id for row in page)  # a page may come in another order
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
        ledger.close()
    if errors:
        raise errors[0]


def _retried(row: Pending) -> Pending:
    return dataclasses.replace(row, attempts=row.attempts + 1)


def _attempt(
    job: Job, transports: dict[str, Transport], message: Message, row: Pending, when: dt.datetime
) -> Outcome:
    transport = transports.get(row.channel)
    if transport is None:
        transport = transports[row.channel] = job.transports.email()
    job.rate.wait()
    # TransportUnavailable passes: the whole run stops; this message is due again.
    sent = transport.send(message)
    if isinstance(sent, Sent):
        return Outcome(SENT, message_id=sent.message_id or None)
    attempt = row.attempts + 1
    if not isinstance(sent, Deferred):  # rejected for good
        return Outcome(FAILED, sent.detail, suppress=row.channel == Channel.EMAIL, permanent=True)
    if attempt >= job.retry.attempts:
        return Outcome(FAILED, f"gave up after {attempt} attempts: {sent.detail}")
    delay = sent.retry_after if sent.retry_after is not None else job.retry.delay(attempt)
    return Outcome(PENDING, sent.detail, retry_at=when + dt.timedelta(seconds=delay))
