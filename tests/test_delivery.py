"""The delivery engine on SQLite and PostgreSQL: retries, suppression, in-flight messages,
concurrent runs."""

from __future__ import annotations

import threading
from collections import Counter

import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.transports import MemoryTransport
from bulletin.errors import DeliveryError
from bulletin.mail.message import Message
from bulletin.store.database import deliveries, subscribers
from bulletin.store.subscribers import import_csv
from tests.conftest import connected

FAST = RetryPolicy(attempts=3, backoff_seconds=0.01)


def _prepared(site, database_url: str, rows: int = 0):
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text() + f'\n[database]\nurl = "{database_url}"\n')
    config = load_config(site)
    engine = connected(config.database_url)
    csv = site / "many.csv"
    lines = ["email,name"] + [f"reader{i}@example.org,Reader {i}" for i in range(rows)]
    csv.write_text("\n".join(lines) + "\n")
    import_csv(engine, config, site / "subscribers.csv", "news")
    if rows:
        import_csv(engine, config, csv, "news")
    edition = core.plan(config, engine)
    core.record(engine, config, edition)
    return config, engine, edition


def test_temporary_failure_is_retried_until_it_goes_through(site, database_url):
    config, engine, edition = _prepared(site, database_url)
    attempts: Counter[str] = Counter()
    delivered: list[str] = []

    def flaky(message: Message) -> None:
        attempts[message.recipient] += 1
        if message.recipient == "john@example.com" and attempts[message.recipient] < 3:
            raise DeliveryError("451 4.3.0 try again later", recipient=message.recipient)
        delivered.append(message.recipient)

    core.deliver(engine, config, edition, MemoryTransport(flaky), retry=FAST)
    tally = core.finish(engine, edition)
    assert attempts["john@example.com"] == 3
    assert delivered.count("john@example.com") == 1
    assert tally[("email", "news", "sent")] == 2


def test_temporary_failure_gives_up_after_the_last_attempt_with_the_reason(site, database_url):
    config, engine, edition = _prepared(site, database_url)

    def always_busy(message: Message) -> None:
        if message.recipient == "john@example.com":
            raise DeliveryError("452 4.2.2 mailbox full", recipient=message.recipient)

    core.deliver(engine, config, edition, MemoryTransport(always_busy), retry=FAST)
    with engine.connect() as db:
        row = db.execute(
            sa.select(deliveries).where(deliveries.c.recipient == "john@example.com")
        ).one()
    assert (row.status, row.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in row.detail and "452" in row.detail


def test_permanent_failure_suppresses_the_address_for_later_editions(site, database_url):
    config, engine, edition = _prepared(site, database_url)

    def reject(message: Message) -> None:
        if message.recipient == "ana@example.org":
            raise DeliveryError(
                "550 5.1.1 no such user", recipient=message.recipient, permanent=True
            )

    core.deliver(engine, config, edition, MemoryTransport(reject), retry=FAST)
    core.finish(engine, edition)
    with engine.connect() as db:
        status = db.scalar(
            sa.select(subscribers.c.status).where(subscribers.c.email == "ana@example.org")
        )
        assert status == "suppressed"
        later = core.Plan("2099-01-01-1", edition.entries, edition.published)
        later.emails = edition.emails
        assert "ana@example.org" not in {a for _, _, a in core.recipients(db, config, later)}


def test_message_in_flight_when_a_run_died_is_sent_again(site, database_url):
    config, engine, edition = _prepared(site, database_url)
    with engine.begin() as db:  # as a killed run leaves it: one message in flight
        db.execute(
            deliveries.update()
            .where(deliveries.c.recipient == "john@example.com")
            .values(status="sending")
        )
    sent: list[str] = []
    core.deliver(engine, config, edition, MemoryTransport(lambda m: sent.append(m.recipient)))
    assert sorted(sent) == sorted(
        ["ana@example.org", "john@example.com", "desk@lists.example.org",
         "https://partner.example/hooks/bulletin"]
    )  # fmt: skip


def test_two_runs_at_once_never_send_to_anyone_twice(site, database_url):
    config, engine, edition = _prepared(site, database_url, rows=300)
    sent: list[str] = []
    lock = threading.Lock()

    def record(message: Message) -> None:
        with lock:
            sent.append(message.recipient)

    runs = [
        threading.Thread(
            target=core.deliver,
            args=(engine, config, edition, MemoryTransport(record)),
            kwargs={"connections": 3},
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(sent) == len(set(sent)) == 300 + 2 + 1 + 1


def test_several_connections_share_the_work_and_record_every_message(site, database_url):
    config, engine, edition = _prepared(site, database_url, rows=200)
    by_thread: Counter[int] = Counter()

    def note(message: Message) -> None:
        by_thread[threading.get_ident()] += 1

    core.deliver(engine, config, edition, MemoryTransport(note), connections=4)
    tally = core.finish(engine, edition)
    assert sum(by_thread.values()) == 204
    assert len(by_thread) > 1
    assert tally[("email", "news", "sent")] == 202
