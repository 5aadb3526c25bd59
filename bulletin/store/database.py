"""Opens a site's database (SQLite by default, PostgreSQL by URL) and defines its tables."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from bulletin.errors import ConfigError
from bulletin.redaction import redact, redact_urls

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
from bulletin.store.statuses import DeliveryStatus, SubscriberStatus

metadata = sa.MetaData()

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("language", sa.String(20), nullable=False, default=""),
    # pending | active | unsubscribed | suppressed (SubscriberStatus)
    sa.Column("status", sa.String(20), nullable=False, default=SubscriberStatus.ACTIVE),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("list_name", "email", name="uq_subscriber"),
)

# Proof of consent (GDPR art. 7(1)), one row per list an address was asked for: how (web
# form, preferences page, import file and line, by whom), when asked and confirmed, which
# consent text was shown, and when it was withdrawn. Owned by bulletin/store/consent.py.
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # A web sign-up's confirmation link names its request: it confirms these rows, once.
    sa.Column("request_id", sa.String(40)),
    sa.Column("list_name", sa.String(100), nullable=False),
    # The address; after an erasure, the keyed hash that stands for it in the ledger.
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("method", sa.String(20), nullable=False),  # web-form | preferences | import
    sa.Column("source", sa.String(300), nullable=False),  # the form's path or the CSV file
    sa.Column("source_line", sa.Integer),
    sa.Column("source_sha256", sa.String(64)),
    sa.Column("made_by", sa.String(200), nullable=False),  # who imported; "" for the reader
    sa.Column("language", sa.String(20), nullable=False),
    sa.Column("text_sha256", sa.String(64)),  # consent_texts.sha256 of the text shown
    sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    sa.Column("withdrawn_how", sa.String(20)),  # unsubscribe | preferences | erasure
)
# Every consent text ever shown on a form, by its SHA-256: the hash in `consents` points here.
consent_texts = sa.Table(
    "consent_texts",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("language", sa.String(20), nullable=False),
    sa.Column("template", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("first_shown_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_consents_email", consents.c.email)
sa.Index("ix_consents_request", consents.c.request_id)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # prepared → done (EditionStatus); an edition not done is resumed by the next publish
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)

edition_entries = sa.Table(
    "edition_entries",
    metadata,
    sa.Column("edition_id", sa.ForeignKey("editions.id"), primary_key=True),
    sa.Column("slug", sa.String(200), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("approval", sa.String(80), nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("edition_id", sa.ForeignKey("editions.id"), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),  # email | partner (Channel)
    sa.Column("target", sa.String(100), nullable=False),  # list or partner key
    sa.Column("recipient", sa.String(320), nullable=False),
    # pending → sending → sent | failed | skipped (DeliveryStatus); a temporary failure goes
    # back to pending with a later next_attempt_at. "sending" is the one message in flight on
    # a connection: a run that dies leaves it so, and the next run sends it again.
    sa.Column("status", sa.String(20), nullable=False, default=DeliveryStatus.PENDING),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("message_id", sa.String(200)),
    sa.Column("detail", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("edition_id", "channel", "target", "recipient", name="uq_delivery"),
)
suppressions = sa.Table(
    "suppressions",
    metadata,
    # An address that bounced for good (a 5xx reply) gets no further editions.
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("edition_id", sa.String(40)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

approvals = sa.Table(
    "approvals",
    metadata,
    # The audit trail of approvals: each signed approval, as `bulletin approve` made it or
    # as the edition that carried it found it, and that edition.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(200), nullable=False),
    sa.Column("path", sa.String(500), nullable=False),
    sa.Column("content_hash", sa.String(80), nullable=False),
    sa.Column("approver", sa.String(100), nullable=False),  # its ID in bulletin.toml
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
    sa.Column("edition_id", sa.ForeignKey("editions.id")),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("slug", "signature", name="uq_approval"),
)

inbound_events = sa.Table(
    "inbound_events",
    metadata,
    # What came back (bulletin.inbound.events owns it): one row per message processed.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_key", sa.String(64), nullable=False),  # digest: seen twice, done once
    sa.Column("kind", sa.String(20), nullable=False),  # bounce | complaint | unsubscribe | ...
    sa.Column("outcome", sa.String(20), nullable=False),  # suppressed | counted | unmatched ...
    sa.Column("email", sa.String(320)),
    sa.Column("list_name", sa.String(100)),
    sa.Column("edition_id", sa.String(40)),
    sa.Column("status", sa.String(20)),  # the DSN status code, e.g. 5.1.1
    sa.Column("permanent", sa.Boolean),
    sa.Column("detail", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("message_key", name="uq_inbound_message"),
)

sa.Index("ix_deliveries_pending", deliveries.c.edition_id, deliveries.c.status)

# --- 0005: every attempt at a delivery, not only the last (bulletin status, resend) ------
delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    # what the attempt came to: sent | failed | skipped | pending (deferred, due again)
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text),
    # the server refused for good (a 5xx, a partner's 4xx): trying again cannot help
    sa.Column("permanent", sa.Boolean, nullable=False, default=False),
)
sa.Index("ix_delivery_attempts_delivery", delivery_attempts.c.delivery_id)
# --- end 0005 ---------------------------------------------------------------------------
sa.Index("ix_edition_entries_slug", edition_entries.c.slug)
sa.Index("ix_inbound_events_email", inbound_events.c.email, inbound_events.c.kind)


#: The newest migration in bulletin/migrations/versions; a test checks that they agree. It
#: lets `connect` see that a database is up to date without importing Alembic (~0.2 s).
SCHEMA_REVISION = "0003"
#: The first migration: a database made before migrations (by create_all) is stamped with it.
BASELINE_REVISION = "0001"
#: The tables of the baseline revision: `_adopt` completes only these; later revisions add
#: the others when the adopted database is upgraded.
BASELINE_TABLES = ("subscribers", "editions", "edition_entries", "deliveries", "suppressions")
MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_KEY = 0x62756C6C6D696772  # "bullmigr": PostgreSQL advisory lock of migrations


def connect(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for `url`, its schema migrated to the newest revision unless `create` is false.

    `postgresql://` URLs use the psycopg (version 3) driver.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = None
    try:
        engine = sa.create_engine(_with_driver(url))
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        if create:
            migrate(engine)
    except BaseException as exc:
        if engine is not None:
            engine.dispose()
        if isinstance(exc, SQLAlchemyError | ImportError):
            reason = redact(_first_line(exc), [url])  # drivers quote the URL, or parts of it
            message = f"database.url: cannot open the database: {reason}"
            raise ConfigError(message) from exc
        raise
    return engine


def _with_driver(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def alembic_config(url: str | None = None) -> AlembicConfig:
    """Alembic's configuration, without an alembic.ini: the scripts ship in the package.

    For a new revision: `alembic_config()` into `alembic.command.revision(config, "what",
    rev_id="0002")`, then write its upgrade by hand and raise SCHEMA_REVISION.
    """
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        rendered = _with_driver(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to SCHEMA_REVISION; one quick query when it is there already.

    Processes that start at once take turns: the first migrates, the others find it done.
    """
    with engine.connect() as db:
        if _revision(db) == SCHEMA_REVISION:
            return
    from alembic import command
    from alembic.util import CommandError

    with _migration_lock(engine) as db:
        current = _revision(db)
        if current == SCHEMA_REVISION:
            return
        config = alembic_config()
        config.attributes["connection"] = db
        try:
            if current is None and _has_tables(db):
                _adopt(db)
                command.stamp(config, BASELINE_REVISION)
            command.upgrade(config, "head")
        except CommandError as exc:  # e.g. a revision from a newer bulletin
            raise ConfigError(
                f"database.url: cannot migrate the database from schema revision {current} "
                f"to {SCHEMA_REVISION}: {redact_urls(_first_line(exc))}"
            ) from exc


def _revision(db: sa.Connection) -> str | None:
    if not sa.inspect(db).has_table("alembic_version"):
        return None
    versions = db.scalars(sa.text("SELECT version_num FROM alembic_version")).all()
    return versions[0] if len(versions) == 1 else ",".join(sorted(versions)) or None


def _has_tables(db: sa.Connection) -> bool:
    return bool(set(sa.inspect(db).get_table_names()) & set(BASELINE_TABLES))


def _adopt(db: sa.Connection) -> None:
    """Bring a database made by create_all before migrations up to the baseline revision.

    Such a database can lack tables and nullable columns added since it was made; they are
    added here from `metadata`, for the baseline's tables only (later revisions make
    their own tables on the upgrade that follows). A later revision that adds a column to
    a baseline table must freeze this list first (the test of an old database then fails
    with a duplicate column).
    """
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    baseline = [metadata.tables[name] for name in BASELINE_TABLES]
    metadata.create_all(db, tables=baseline)
    operations = Operations(MigrationContext.configure(db))
    inspector = sa.inspect(db)
    for table in baseline:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise ConfigError(
                    f"database.url: the database predates migrations and lacks the required "
                    f"column {table.name}.{column.name}; back it up and let bulletin make a "
                    "new one"
                )
            operations.add_column(table.name, sa.Column(column.name, column.type))


@contextlib.contextmanager
def _migration_lock(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction that no other process migrates beside.

    PostgreSQL: a session advisory lock. SQLite: BEGIN IMMEDIATE, the database's write
    lock, taken before the first read (other writers wait for the busy timeout). The lock
    is on a connection of its own engine without a pool, so it ends with the connection.
    """
    name = engine.dialect.name
    if name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        with engine.begin() as db:  # nobody else can reach a database in memory
            yield db
        return
    locker = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    try:
        if name == "sqlite":
            sa.event.listen(locker, "connect", _sqlite_own_transactions)
            sa.event.listen(locker, "connect", _sqlite_pragmas)
            sa.event.listen(locker, "begin", _sqlite_begin_immediate)
        with locker.connect() as db:
            if name == "postgresql":
                db.execute(sa.select(sa.func.pg_advisory_lock(_MIGRATION_LOCK_KEY)))
                db.commit()
            with db.begin():
                yield db
    finally:
        locker.dispose()


def _sqlite_own_transactions(connection: sqlite3.Connection, _record: object) -> None:
    # Python's sqlite3 would neither begin before DDL nor let us say BEGIN IMMEDIATE.
    connection.isolation_level = None


def _sqlite_begin_immediate(db: sa.Connection) -> None:
    db.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_pragmas(connection: sqlite3.Connection, _record: object) -> None:
    cursor = connection.cursor()
    # A busy timeout rides out short locks; WAL lets `serve` read while a publish writes.
    cursor.execute("PRAGMA busy_timeout=10000")
    # Turning a new file to WAL while another process does the same can fail at once with
    # "database is locked" (SQLite waits for no busy timeout there): try again, briefly.
    deadline = time.monotonic() + 10
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    # Under WAL, NORMAL syncs at checkpoints, not at every commit: a killed process loses
    # nothing committed (only a power cut could lose the last commits). The delivery ledger
    # commits once per message, so a full sync at each would bound the send rate.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
