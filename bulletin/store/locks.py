"""Keeps runs of a site apart: the run lock (one publish, digest, timed or resend run at a
time, from planning to the end), and the delivery and batch locks (never two senders of
the same deliveries)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.errors import RunInProgress

if TYPE_CHECKING:
    from bulletin.store.ledger import Batch

_LOCK_KEY = 0x62756C6C  # "bull": the PostgreSQL advisory lock of delivery runs
_BATCH_LOCK_CLASS = 0x62756C62  # "bulb": with a batch's first id, the lock of one batch
_RUN_KEY = 0x62756C72  # "bulr": the PostgreSQL advisory lock of a site's runs

#: Run locks this process holds, by site, with how many holders: a flow that the command
#: line runs in its own process goes on under the command's lock.
_held: dict[str, int] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def site_run(engine: sa.Engine, config: Config, what: str, *, wait: bool) -> Iterator[None]:
    """Held for a whole run (plan, send, tally) of `what` (publish, resend, ...): no two
    runs of a site plan or send at once.

    With `wait`, a run waits for the one under way; without, it raises RunInProgress at
    once. Like the delivery lock it dies with its holder; within one process it is
    re-entrant.
    """
    site = _site_key(engine, config)
    with _held_guard:
        if _held.get(site):
            _held[site] += 1
            owned = False
        else:
            owned = True
    if not owned:
        try:
            yield
        finally:
            with _held_guard:
                _held[site] -= 1
        return
    with _acquired(engine, config, what, wait=wait):
        with _held_guard:
            _held[site] = 1
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(site, None)


def run_under_way(engine: sa.Engine, config: Config) -> bool:
    """Whether a run of the site holds its run lock now (this process's own included)."""
    with _held_guard:
        if _held.get(_site_key(engine, config)):
            return True
    try:
        with _acquired(engine, config, "status", wait=False, note=False):
            return False
    except RunInProgress:
        return True


def _site_key(engine: sa.Engine, config: Config) -> str:
    if engine.dialect.name == "postgresql":
        return engine.url.render_as_string(hide_password=True)
    return str(config.state_dir.resolve())


@contextlib.contextmanager
def _acquired(
    engine: sa.Engine, config: Config, what: str, *, wait: bool, note: bool = True
) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with engine.connect() as db:
            if wait:
                db.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _RUN_KEY})
            elif not db.scalar(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _RUN_KEY}):
                db.rollback()
                raise RunInProgress(_busy(None))
            db.commit()
            try:
                yield
            finally:
                db.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _RUN_KEY})
                db.commit()
        return
    config.state_dir.mkdir(parents=True, exist_ok=True)
    path = config.state_dir / "run.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            raise RunInProgress(_busy(handle.read().strip() or None)) from None
        if not note:
            yield
            return
        # Who holds it, for the message of a run that finds it taken.
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(config.site.tz).strftime("%Y-%m-%d %H:%M:%S %Z")
        handle.write(f"a {what} run (process {os.getpid()}, started {started})\n")
        handle.flush()
        yield


def _busy(holder: str | None) -> str:
    who = holder or "another publish, digest, timed or resend run"
    return (
        f"{who} of this site is planning or sending right now; this run did nothing. "
        "Wait for it to finish (`bulletin status` shows the editions and what is pending), "
        "then run this command again"
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
