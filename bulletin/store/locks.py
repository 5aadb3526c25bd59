"""Keeps two runs from sending the same deliveries at once: the delivery and batch locks."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bulletin.config.model import Config

if TYPE_CHECKING:
    from bulletin.store.ledger import Batch

_LOCK_KEY = 0x62756C6C  # "bull": the PostgreSQL advisory lock of delivery runs
_BATCH_LOCK_CLASS = 0x62756C62  # "bulb": with a batch's first id, the lock of one batch


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
