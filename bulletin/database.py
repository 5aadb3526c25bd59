"""Opens a site's database (SQLite by default, PostgreSQL by URL) and defines its tables."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from bulletin.errors import ConfigError

metadata = sa.MetaData()

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("language", sa.String(20), nullable=False, default=""),
    # active | unsubscribed | suppressed
    sa.Column("status", sa.String(20), nullable=False, default="active"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("list_name", "email", name="uq_subscriber"),
)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # prepared → done; an edition not done is resumed by the next publish
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
    sa.Column("channel", sa.String(20), nullable=False),  # list | partner
    sa.Column("target", sa.String(100), nullable=False),  # list or partner key
    sa.Column("recipient", sa.String(320), nullable=False),
    # pending → sending → sent | failed | skipped; a temporary failure goes back to
    # pending with a later next_attempt_at. "sending" is the one message in flight on a
    # connection: a run that dies leaves it so, and the next run sends it again.
    sa.Column("status", sa.String(20), nullable=False, default="pending"),
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

sa.Index("ix_deliveries_pending", deliveries.c.edition_id, deliveries.c.status)
sa.Index("ix_edition_entries_slug", edition_entries.c.slug)


def connect(url: str, *, create: bool = True) -> sa.Engine:
    """An engine for `url`, with the tables created where they are missing."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        if create:
            metadata.create_all(engine)
    except (SQLAlchemyError, ImportError) as exc:
        raise ConfigError(f"database.url: cannot open the database: {_first_line(exc)}") from exc
    return engine


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    # WAL lets `serve` read while a publish writes; a busy timeout rides out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
