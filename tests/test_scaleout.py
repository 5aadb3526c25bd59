"""Sending in batches: per-batch locks and claims in the ledger, and the publish flow on a
real Dask cluster (two worker processes) with the ledger in PostgreSQL."""

from __future__ import annotations

import base64
import itertools
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.store import ledger
from bulletin.store.database import deliveries
from bulletin.store.subscribers import import_csv
from tests.conftest import connected
from tests.smtp_server import smtp_server
from tests.webhook_server import webhook_server


def _configure(site: Path, database_url: str, readers: int, delivery: str = "") -> None:
    text = (site / "bulletin.toml").read_text()
    text = text.replace(
        "[lists.news]",
        f'[database]\nurl = "{database_url}"\n\n[delivery]\n{delivery}\n\n[lists.news]',
    )
    (site / "bulletin.toml").write_text(text)
    rows = ["email,name", *[f"reader{i}@example.org,Reader {i}" for i in range(readers)]]
    (site / "subscribers.csv").write_text("\n".join(rows) + "\n")
    config = load_config(site)
    import_csv(connected(config.database_url), config, site / "subscribers.csv", "news")


def _recorded(site: Path):
    config = load_config(site)
    engine = connected(config.database_url)
    edition = core.plan(config, engine)
    core.record(engine, config, edition)
    return config, engine, edition


def test_batches_cut_the_ledger_the_same_way_every_time(site, database_url):
    _configure(site, database_url, readers=2499)
    config, engine, edition = _recorded(site)
    with engine.connect() as db:
        first = ledger.batches(db, edition.edition_id, 1000)
        total = ledger.count_pending(db, edition.edition_id, channel="email")
        partners = ledger.count_pending(db, edition.edition_id, channel="partner")
    # Batches are the email's: partners go once, from the run's driver.
    assert partners > 0
    assert [b.unsettled for b in first] == [1000, 1000, total - 2000]
    assert all(a.last_id < b.first_id for a, b in itertools.pairwise(first))
    # Send the first batch: the others keep their bounds, and the first is left out.
    core.deliver(engine, config, edition, _memory(lambda m: None), batch=first[0])
    with engine.connect() as db:
        again = ledger.batches(db, edition.edition_id, 1000)
    assert again == first[1:]


def test_two_runs_of_one_batch_at_once_send_each_message_once(site, database_url):
    _configure(site, database_url, readers=600)
    config, engine, edition = _recorded(site)
    with engine.connect() as db:
        (batch,) = ledger.batches(db, edition.edition_id, 10_000)
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    def count(message) -> None:
        with lock:
            sent[message.recipient] += 1

    runs = [
        threading.Thread(
            target=core.deliver,
            args=(engine, config, edition, _memory(count)),
            kwargs={"batch": batch, "connections": 3},
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(sent) == batch.unsettled
    assert set(sent.values()) == {1}


def test_a_message_claimed_elsewhere_is_not_sent_again(site, database_url):
    """The claim itself: a row another run has taken is skipped, not sent."""
    _configure(site, database_url, readers=10)
    _config, engine, edition = _recorded(site)
    with engine.begin() as db:
        taken = db.scalar(
            sa.select(deliveries.c.id)
            .where(deliveries.c.recipient == "reader3@example.org")
            .limit(1)
        )
        db.execute(deliveries.update().where(deliveries.c.id == taken).values(status="sent"))
    from bulletin.delivery import engine as delivery

    sent: list[str] = []
    with engine.connect() as db:
        rows = ledger.pending_page(db, edition.edition_id, 0, 100)
    # A stale page: it still lists the row, as a page read just before the other run took it.
    rows.append(ledger.Pending(taken, "email", "news", "reader3@example.org", 0))
    job = delivery.Job(
        rows=lambda after, limit: rows if after == 0 else [],
        total=len(rows),
        make=lambda row, when: (_message(row), None),
        transports=_memory(lambda m: sent.append(m.recipient)),
    )
    delivery.run(engine, job)
    assert "reader3@example.org" not in sent
    assert len(sent) == len(rows) - 1


def _memory(handler) -> TransportFactory:
    return TransportFactory(lambda: MemoryTransport(handler))


def _message(row):
    from bulletin.mail.message import Message

    return Message("email", "e", row.target, row.recipient, b"x", f"m{row.id}")


# --- On a Dask cluster ------------------------------------------------------------------------


@pytest.fixture
def dask_cluster(prefect_harness):
    """Two worker processes, which report their task runs to the session's Prefect server
    (as workers started with PREFECT_API_URL set do)."""
    distributed = pytest.importorskip("distributed")
    from prefect.settings import PREFECT_API_URL

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        env={"PREFECT_API_URL": PREFECT_API_URL.value()},
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        yield cluster, client


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_dask_workers_send_everyone_once_even_when_one_is_killed(
    site, database_url, dask_cluster, prefect_harness, monkeypatch
):
    from bulletin.flows.publish import publish

    cluster, client = dask_cluster
    readers = 5000
    secret = "whsec_" + base64.b64encode(b"scale-out test partner secret").decode()
    monkeypatch.setenv("BULLETIN_PARTNER_INTERPOL_SECRET", secret)
    with smtp_server() as server, webhook_server(secret) as partner:
        toml = site / "bulletin.toml"
        toml.write_text(
            toml.read_text().replace("https://partner.example/hooks/bulletin", partner.url())
        )
        _configure(
            site, database_url, readers,
            f'transport = "smtp"\nconnections = 2\nretry_backoff_seconds = 0.05\n'
            f'task_runner = "dask"\ndask_address = "{cluster.scheduler_address}"\n'
            f'batch_size = 500\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
            "timeout = 5",
        )  # fmt: skip
        outcome: dict = {}
        run = threading.Thread(
            target=lambda: outcome.update(state=publish(site=str(site), return_state=True))
        )
        run.start()
        deadline = time.monotonic() + 300
        while len(server.received) < readers // 3:
            assert run.is_alive(), outcome
            assert time.monotonic() < deadline, "the send stalled"
            time.sleep(0.01)
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        run.join(timeout=600)
        assert not run.is_alive()
        runs = 1
        if not outcome["state"].is_completed():  # the flow retried, as a deployment's would
            outcome["state"] = publish(site=str(site), return_state=True)
            runs += 1
        assert outcome["state"].is_completed(), outcome["state"]
        counts = Counter(r for m in server.received for r in m.recipients)
        # The partner went once, from the driver, however the batches fared.
        assert [r.verified for r in partner.received] == [True]
    expected = {f"reader{i}@example.org" for i in range(readers)} | {"desk@lists.example.org"}
    assert set(counts) == expected, "someone got nothing"
    # At most the message in flight on each of the killed worker's connections went twice.
    twice = [r for r, n in counts.items() if n > 1]
    assert len(twice) <= 2, twice
    engine = connected(load_config(site).database_url)
    with engine.connect() as db:
        statuses = Counter(db.scalars(sa.select(deliveries.c.status)))
    assert statuses == {"sent": readers + 2}  # the readers, the desk list, the partner
    report = outcome["state"].result()
    assert report.email["sent"] == readers + 1
