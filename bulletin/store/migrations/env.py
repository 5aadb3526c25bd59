"""Alembic's entry point: runs the migrations on the connection `bulletin.database` hands it.

`bulletin.store.database.connect` passes an open connection, already locked and in a transaction,
as `config.attributes["connection"]`. Run from a script instead, with only
`sqlalchemy.url` set, it opens one itself; with `--sql` it prints the SQL (offline mode).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from bulletin.store.database import metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: sa.Connection) -> None:
    # Batch mode lets later revisions alter SQLite tables (by copying them).
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run_online(connection)
else:
    from bulletin.store.database import connect

    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise SystemExit(
            "alembic: set sqlalchemy.url (bulletin.store.database.alembic_config(url))"
        )
    engine = connect(url, create=False)
    try:
        with engine.connect() as connection:
            run_online(connection)
            connection.commit()
    finally:
        engine.dispose()
