"""The database on SQLite and PostgreSQL: migrations, concurrent starts, subscribers, ledger.

Each test that takes `database_url` runs on both; the PostgreSQL one needs scripts/postgres.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bulletin.config import Database, load_config
from bulletin.content.entries import Entry
from bulletin.store import ledger
from bulletin.store.database import (
    BASELINE_REVISION,
    BASELINE_TABLES,
    SCHEMA_REVISION,
    alembic_config,
    connect,
    deliveries,
    metadata,
    subscribers,
)
from bulletin.store.subscribers import export_csv, import_csv

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2025, 3, 4, 9, 30, tzinfo=dt.UTC)


@contextlib.contextmanager
def opened(url: str):
    """connect(url), disposed after: PostgreSQL drops the test's database at teardown."""
    engine = connect(url)
    try:
        yield engine
    finally:
        engine.dispose()


def schema_drift(engine: sa.Engine) -> list:
    with engine.connect() as db:
        return compare_metadata(MigrationContext.configure(db), metadata)


def assert_schema_matches_metadata(engine: sa.Engine) -> None:
    drift = schema_drift(engine)
    assert not drift, (
        "the migrated schema differs from bulletin.store.database.metadata; add a migration in "
        "bulletin/migrations/versions (or fix it) so that they agree:\n"
        + "\n".join(f"  {difference}" for difference in drift)
    )


def revisions(engine: sa.Engine) -> list[str]:
    with engine.connect() as db:
        return list(db.scalars(sa.text("SELECT version_num FROM alembic_version")))


def test_schema_revision_is_the_newest_migration():
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_current_head() == SCHEMA_REVISION, (
        "bulletin.store.database.SCHEMA_REVISION must name the newest migration"
    )
    assert scripts.get_base() == BASELINE_REVISION


def test_migrations_make_the_schema_of_the_metadata(database_url):
    with opened(database_url) as engine:
        assert revisions(engine) == [SCHEMA_REVISION]
        assert_schema_matches_metadata(engine)
        with engine.connect() as db:
            tables = set(sa.inspect(db).get_table_names())
        assert tables == {*metadata.tables, "alembic_version"}


def test_connect_twice_changes_nothing(database_url):
    with opened(database_url) as engine, engine.begin() as db:
        db.execute(
            subscribers.insert().values(
                list_name="news", email="ana@example.org", name="Ana", language="ro",
                status="active", created_at=NOW, updated_at=NOW,
            )
        )  # fmt: skip
    with opened(database_url) as engine:
        assert revisions(engine) == [SCHEMA_REVISION]
        with engine.connect() as db:
            assert db.scalar(sa.select(sa.func.count()).select_from(subscribers)) == 1
        assert_schema_matches_metadata(engine)


def test_processes_starting_at_once_migrate_once(database_url):
    # Each process waits for the same moment, then connects: one migrates, the others wait
    # for its lock and find the schema done.
    start = time.time() + 2
    script = (
        "import sys, time\n"
        "from bulletin.store.database import connect\n"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()))\n"
        "connect(sys.argv[1]).dispose()\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url, str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(*p.communicate(timeout=120), p.returncode) for p in processes]
    failures = "\n".join(err for _, err, code in outcomes if code)
    assert not failures, failures
    with opened(database_url) as engine:
        assert revisions(engine) == [SCHEMA_REVISION]
        assert_schema_matches_metadata(engine)


def test_a_database_from_before_migrations_is_stamped_and_completed(database_url):
    # What create_all of the last release without migrations made: no suppressions table,
    # no deliveries.next_attempt_at, none of the tables of later revisions; no alembic_version.
    engine = connect(database_url, create=False)
    try:
        with engine.begin() as db:
            metadata.create_all(db, tables=[metadata.tables[n] for n in BASELINE_TABLES])
            db.execute(sa.text("DROP TABLE suppressions"))
            db.execute(sa.text("ALTER TABLE deliveries DROP COLUMN next_attempt_at"))
            db.execute(
                subscribers.insert().values(
                    list_name="news", email="old@example.org", name="Old", language="en",
                    status="active", created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
    finally:
        engine.dispose()
    with opened(database_url) as engine:
        # Stamped with the baseline, then upgraded: later revisions' tables are made too.
        assert revisions(engine) == [SCHEMA_REVISION]
        assert_schema_matches_metadata(engine)
        with engine.connect() as db:
            assert list(db.scalars(sa.select(subscribers.c.email))) == ["old@example.org"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgresql_urls_use_psycopg(database_url, scheme):
    # Both spellings work with psycopg 3, the driver bulletin installs; psycopg2 is not needed.
    url = database_url.replace("postgresql://", f"{scheme}://", 1)
    with opened(url) as engine:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        assert revisions(engine) == [SCHEMA_REVISION]


def test_a_sqlite_url_creates_its_folder_and_file(tmp_path):
    path = tmp_path / "new" / "folder" / "bulletin.db"
    with opened(f"sqlite:///{path}") as engine:
        assert (engine.dialect.name, engine.dialect.driver) == ("sqlite", "pysqlite")
        assert revisions(engine) == [SCHEMA_REVISION]
    assert path.is_file()


def _site_config(site: Path, url: str):
    config = load_config(site)
    return dataclasses.replace(config, database=Database(url=url))


def test_subscribers_import_and_export(database_url, site):
    config = _site_config(site, database_url)
    assert config.database_url == database_url
    more = site / "more.csv"
    more.write_text(
        "email,name,language\n"
        "Stefan.Ionescu@Example.org,Ștefan Ionescu,ro\n"
        "ANA@example.org,Ana Maria Popescu,\n"
        "not-an-address,Nobody,en\n",
        encoding="utf-8",
    )
    with opened(config.database_url) as engine:
        first = import_csv(engine, config, site / "subscribers.csv", "news")
        assert (first.added, first.updated, first.problems) == (2, 0, [])
        second = import_csv(engine, config, more, "news")
        assert (second.added, second.updated) == (1, 1)
        assert [problem.line for problem in second.problems] == [4]
        assert export_csv(engine, config, "news").splitlines() == [
            "email,name,language,status,reason,since",
            "Stefan.Ionescu@example.org,Ștefan Ionescu,ro,active,,",
            "ana@example.org,Ana Maria Popescu,ro,active,,",
            "john@example.com,John Carter,en,active,,",
        ]


def _entry(slug: str) -> Entry:
    return Entry(
        path=Path(f"content/{slug}.md"), display=f"content/{slug}.md", slug=slug,
        title=slug.title(), date=NOW.date(), language="en", funding="eu", status="approved",
        body="", html="", approval=f"sha256:{slug}",
    )  # fmt: skip


def _pending(db, edition: str, channel: str) -> list:
    return [p for p in ledger.pending_page(db, edition, 0, 100) if p.channel == channel]


def _mark(db, delivery_id: int, status: str, **values) -> None:
    db.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id)
        .values(status=status, attempts=deliveries.c.attempts + 1, updated_at=NOW, **values)
    )


def test_ledger(database_url):
    recipients = [
        ("list", "news", "ana@example.org"),
        ("list", "news", "john@example.com"),
        ("partner", "interpol", "https://partner.example/hooks/bulletin"),
    ]
    with opened(database_url) as engine:
        with engine.begin() as db:
            assert ledger.unfinished(db) is None
            edition = ledger.next_edition_id(db, NOW.date())
            assert edition == "2025-03-04-1"
            ledger.prepare(db, edition, [_entry("first"), _entry("second")], recipients, NOW)
            assert ledger.next_edition_id(db, NOW.date()) == "2025-03-04-2"
            assert ledger.next_edition_id(db, NOW.date() + dt.timedelta(days=1)) == "2025-03-05-1"

        with engine.begin() as db:
            record = ledger.unfinished(db)
            assert record == ledger.EditionRecord(edition, NOW, "prepared", ("first", "second"))
            assert record.created_at.tzinfo is not None
            listed = _pending(db, edition, "list")
            assert [(p.target, p.recipient, p.attempts) for p in listed] == [
                ("news", "ana@example.org", 0),
                ("news", "john@example.com", 0),
            ]
            _mark(db, listed[0].id, "sent", message_id="<1@example.org>")
            _mark(db, listed[1].id, "failed", detail="550 no such user")
            assert [p.recipient for p in _pending(db, edition, "partner")] == [
                "https://partner.example/hooks/bulletin"
            ]
            assert ledger.published_slugs(db) == {"first", "second"}

        with engine.begin() as db:
            assert _pending(db, edition, "list") == []
            assert ledger.counts(db, edition) == {
                ("list", "news", "sent"): 1,
                ("list", "news", "failed"): 1,
                ("partner", "interpol", "pending"): 1,
            }
            sent = db.execute(sa.select(deliveries).where(deliveries.c.status == "sent")).one()
            assert (sent.attempts, sent.message_id) == (1, "<1@example.org>")
            ledger.finish(db, edition, NOW + dt.timedelta(minutes=5))

        with engine.connect() as db:
            assert ledger.unfinished(db) is None
            assert [(e.id, e.status) for e in ledger.all_editions(db)] == [(edition, "done")]


def test_a_bad_url_is_a_config_error(tmp_path):
    from bulletin.errors import ConfigError

    with pytest.raises(ConfigError, match=r"database\.url: cannot open the database"):
        connect("postgresql://nobody:secret@127.0.0.1:1/none")
