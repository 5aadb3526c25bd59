"""The delivery engine on SQLite and PostgreSQL: retries, suppression, in-flight messages,
concurrent runs."""

from __future__ import annotations

import threading
from collections import Counter

import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery.engine import RetryPolicy
from bulletin.delivery.transports import Deferred, MemoryTransport, Rejected, TransportFactory
from bulletin.mail.message import Message
from bulletin.store.database import deliveries, subscribers
from bulletin.store.subscribers import import_csv
from tests.conftest import connected

FAST = RetryPolicy(attempts=3, backoff_seconds=0.01)


def _memory(handler) -> TransportFactory:
    return TransportFactory(lambda: MemoryTransport(handler))


def _publish(site, engine, handler, **steps) -> core.Result:
    """Publish the site's edition through the conductor, every message to `handler`."""
    return core.publish(site, steps=core.Steps(_memory(handler), engine=engine, **steps))


def _configured(site, database_url: str, rows: int = 0):
    """The fixture site on `database_url`, with its subscribers and `rows` more."""
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
    return config, engine


def _prepared(site, database_url: str, rows: int = 0):
    """As `_configured`, with the first edition recorded and nothing sent yet."""
    config, engine = _configured(site, database_url, rows)
    edition = core.plan(config, engine)
    core.record(engine, config, edition)
    return config, engine, edition


def test_temporary_failure_is_retried_until_it_goes_through(site, database_url):
    _, engine = _configured(site, database_url)
    attempts: Counter[str] = Counter()
    delivered: list[str] = []

    def flaky(message: Message) -> Deferred | None:
        attempts[message.recipient] += 1
        if message.recipient == "john@example.com" and attempts[message.recipient] < 3:
            return Deferred("451 4.3.0 try again later")
        delivered.append(message.recipient)
        return None

    report = _publish(site, engine, flaky, retry=FAST).report
    assert attempts["john@example.com"] == 3
    assert delivered.count("john@example.com") == 1
    assert report.per_list["news"] == {"sent": 2}


def test_temporary_failure_gives_up_after_the_last_attempt_with_the_reason(site, database_url):
    _, engine = _configured(site, database_url)

    def always_busy(message: Message) -> Deferred | None:
        if message.recipient == "john@example.com":
            return Deferred("452 4.2.2 mailbox full")
        return None

    _publish(site, engine, always_busy, retry=FAST)
    with engine.connect() as db:
        row = db.execute(
            sa.select(deliveries).where(deliveries.c.recipient == "john@example.com")
        ).one()
    assert (row.status, row.attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in row.detail and "452" in row.detail


def test_permanent_failure_suppresses_the_address_for_later_editions(site, database_url):
    config, engine = _configured(site, database_url)
    edition = core.plan(config, engine, record=False)  # what a later edition's lists are

    def reject(message: Message) -> Rejected | None:
        if message.recipient == "ana@example.org":
            return Rejected("550 5.1.1 no such user")
        return None

    assert _publish(site, engine, reject, retry=FAST).report.email["failed"] == 1
    with engine.connect() as db:
        status = db.scalar(
            sa.select(subscribers.c.status).where(subscribers.c.email == "ana@example.org")
        )
        assert status == "suppressed"
        later = core.Plan("2099-01-01-1", edition.entries, edition.published)
        later.emails = edition.emails
        assert "ana@example.org" not in {a for _, _, a in core.recipients(db, config, later)}


def test_message_in_flight_when_a_run_died_is_sent_again(site, database_url):
    _, engine, edition = _prepared(site, database_url)
    with engine.begin() as db:  # as a killed run leaves it: one message in flight
        db.execute(
            deliveries.update()
            .where(deliveries.c.recipient == "john@example.com")
            .values(status="sending")
        )
    sent: list[str] = []
    assert _publish(site, engine, lambda m: sent.append(m.recipient)).report.edition == (
        edition.edition_id
    )
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
            args=(engine, config, edition, _memory(record)),
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
    _, engine = _configured(site, database_url, rows=200)
    by_thread: Counter[int] = Counter()

    def note(message: Message) -> None:
        by_thread[threading.get_ident()] += 1

    report = _publish(site, engine, note, connections=4).report
    assert sum(by_thread.values()) == 204
    assert len(by_thread) > 1
    assert report.per_list["news"] == {"sent": 202}
