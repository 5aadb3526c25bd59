"""The partner phase of a publish: each partner gets the edition once, in a thread of its own.

Partners are few and slow (an HTTP round trip to another organisation, and retries that
wait for minutes), so each gets a thread and the phase lasts about as long as the slowest
partner; a partner that fails holds up no other. Every partner has one ledger row per
edition: marked `sending` before its first attempt and `sent`, `failed` or `skipped` after
the last, so a run killed in between sends it again (with the same webhook-id), and a
partner that acknowledged is never sent the edition again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.delivery.engine import Outcome, RetryPolicy
from bulletin.delivery.transports import Rejected, Sent, TransportFactory
from bulletin.errors import TransportUnavailable
from bulletin.mail.message import Message
from bulletin.store import ledger
from bulletin.store.statuses import DeliveryStatus

#: Partners sent to at once; more wait for a free thread.
MAX_THREADS = 64

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class PartnerJob:
    """What one partner is sent: `make` builds the message for an attempt at a given time."""

    key: str
    make: Callable[[dt.datetime], Message]
    deadline: dt.datetime | None = None  # the entries' earliest send_not_after


_Row = ledger.PartnerRow  # a partner's ledger row: id, partner key, attempts so far


class _Stopped(Exception):
    """The run is stopping: the partner's row stays in flight and the next run sends it."""


class _Unavailable(Exception):
    """The email transport cannot send at all: the partner's row is due again next run."""

    def __init__(
        self, error: TransportUnavailable, attempts: int, earlier: list[ledger.Attempt]
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts
        self.earlier = earlier


def run(
    engine: sa.Engine,
    edition_id: str,
    jobs: Mapping[str, PartnerJob],
    transports: TransportFactory,
    retry: RetryPolicy,
    clock: Clock = lambda: dt.datetime.now(dt.UTC),
    stop: threading.Event | None = None,
) -> None:
    """Send the edition to every partner whose ledger row is still pending.

    Raises the first unexpected error of any partner after all have finished (those
    partners' rows stay in flight), or TransportUnavailable when a partner's email could
    not go because the email server is down; the next run sends them again.
    """
    stop = stop or threading.Event()
    with engine.connect() as db:
        rows = [row for row in ledger.pending_partners(db, edition_id) if row.target in jobs]
    if not rows:
        return
    with engine.begin() as db:
        ledger.mark_sending(db, rows, clock())
    errors: list[BaseException] = []
    with ThreadPoolExecutor(
        max_workers=min(MAX_THREADS, len(rows)), thread_name_prefix="partner"
    ) as pool:
        futures = {
            pool.submit(_deliver, jobs[row.target], row, transports, retry, clock, stop): row
            for row in rows
        }
        waiting = set(futures)
        try:
            while waiting:
                done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                outcomes = []
                for future in done:
                    try:
                        outcomes.append((futures[future], *future.result()))
                    except _Stopped:
                        continue
                    except _Unavailable as exc:
                        detail = str(exc.error)
                        unavailable = Outcome(DeliveryStatus.PENDING, detail)
                        outcomes.append((futures[future], unavailable, exc.attempts, exc.earlier))
                        errors.append(exc.error)
                    except BaseException as exc:  # a crash: the row stays in flight
                        errors.append(exc)
                # Partners that answered together are recorded together: one commit.
                _record(engine, outcomes, clock())
        except BaseException:
            stop.set()  # interrupted: waiting partners give up their retries at once
            raise
    if errors:
        raise errors[0]


def _deliver(
    job: PartnerJob,
    row: _Row,
    transports: TransportFactory,
    retry: RetryPolicy,
    clock: Clock,
    stop: threading.Event,
) -> tuple[Outcome, int, list[ledger.Attempt]]:
    """How the partner's delivery ended, after how many attempts, and the deferred
    attempts before the last (for its history)."""
    attempts = row.attempts
    earlier: list[ledger.Attempt] = []
    transport = transports.partner(job.key)
    try:
        while True:
            if stop.is_set():
                raise _Stopped
            when = clock()
            if job.deadline and when > job.deadline:
                expired = f"send_not_after {job.deadline.isoformat()} passed"
                return Outcome(DeliveryStatus.SKIPPED, expired), attempts, earlier
            message = job.make(when)
            attempts += 1
            try:
                sent = transport.send(message)
            except TransportUnavailable as exc:
                # The email server is down or refuses us: not the partner's fault; the
                # run stops as it does for the lists' email, and the next run sends it.
                raise _Unavailable(exc, attempts, earlier) from exc
            if isinstance(sent, Sent):
                sent_ok = Outcome(DeliveryStatus.SENT, message_id=sent.message_id or None)
                return sent_ok, attempts, earlier
            if isinstance(sent, Rejected):
                return (
                    Outcome(DeliveryStatus.FAILED, sent.detail, permanent=True),
                    attempts,
                    earlier,
                )
            if attempts >= retry.attempts:
                gave_up = f"gave up after {attempts} attempts: {sent.detail}"
                return Outcome(DeliveryStatus.FAILED, gave_up), attempts, earlier
            earlier.append(ledger.Attempt(row.id, when, DeliveryStatus.PENDING, sent.detail))
            asked = sent.retry_after  # the partner's Retry-After, or our backoff
            if stop.wait(asked if asked is not None else retry.delay(attempts)):
                raise _Stopped
    finally:
        transport.close()


def _record(
    engine: sa.Engine,
    outcomes: list[tuple[_Row, Outcome, int, list[ledger.Attempt]]],
    when: dt.datetime,
) -> None:
    if not outcomes:
        return
    with engine.begin() as db:
        ledger.record_partners(db, outcomes, when)
