"""The ledger's hot path shared by a run's workers (`ledger.Claims`): what several workers
record at once goes in one commit, and each claim is still taken once and committed before
its message goes."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from bulletin.store import ledger
from bulletin.store.statuses import Channel
from tests.conftest import connected
from tests.test_statuses import ENTRY, NOW, _Sent

EDITION = "2025-03-04-1"


def _edition(url: str, count: int):
    engine = connected(url)
    recipients = [(Channel.EMAIL, "news", f"r{i}@example.org") for i in range(count)]
    with engine.begin() as db:
        ledger.prepare(db, EDITION, [ENTRY], recipients, NOW)
        rows = ledger.pending_page(db, EDITION, 0, count, channel=Channel.EMAIL)
    return engine, rows


class _Counted:
    """The claims' connection, counting its commits."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1
        self._raw.commit()

    def __getattr__(self, name):
        return getattr(self._raw, name)


def _statuses(engine) -> dict[str, int]:
    with engine.connect() as db:
        rows = db.execute(sa.text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        return {status: n for status, n in rows}


def test_workers_sharing_the_claims_send_each_message_once_in_fewer_commits(database_url):
    workers, each = 8, 60
    engine, rows = _edition(database_url, workers * each)
    claims = ledger.Claims(engine)
    counted = claims.raw = _Counted(claims.raw)
    taken: list[list[int]] = [[] for _ in range(workers)]
    start = threading.Barrier(workers)

    def worker(number: int) -> None:
        start.wait()
        previous = None
        for row in rows[number::workers] + rows[: workers * 2]:  # the first rows: taken
            if claims.record(previous, row, NOW):
                taken[number].append(row.id)
                previous = (row, _Sent())
            else:
                previous = None
        claims.record(previous, None, NOW)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claims.close()

    ids = sorted(i for mine in taken for i in mine)
    assert ids == sorted(row.id for row in rows)  # every message claimed, none twice
    assert _statuses(engine) == {"sent": workers * each}
    records = workers * each + workers  # a claim each, and each worker's last outcome
    assert counted.commits < records  # workers shared commits


def test_a_failed_commit_fails_every_claim_in_it_and_keeps_none(database_url):
    engine, rows = _edition(database_url, 3)
    claims = ledger.Claims(engine)
    assert claims.record(None, rows[0], NOW)
    failing = claims.raw = _Counted(claims.raw)

    def broken() -> None:
        raise RuntimeError("the disk is full")

    failing.commit = broken
    try:
        claims.record((rows[0], _Sent()), rows[1], NOW)
    except RuntimeError as exc:
        assert "disk is full" in str(exc)
    else:
        raise AssertionError("the failed commit was not raised")
    claims.raw = failing._raw
    # Nothing of the failed transaction stayed: row 0 still in flight, row 1 still pending.
    assert _statuses(engine) == {"sending": 1, "pending": 2}
    assert claims.record((rows[0], _Sent()), rows[1], NOW)
    claims.record((rows[1], _Sent()), None, NOW)
    claims.close()
    assert _statuses(engine) == {"sent": 2, "pending": 1}
