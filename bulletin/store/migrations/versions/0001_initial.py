"""The tables as they were when migrations began: subscribers, editions, deliveries.

Revision ID: 0001
Revises:
Create Date: 2025-11-28

Written by hand to mirror `bulletin.store.database.metadata`; tests/test_database.py checks
that the migrated schema and the metadata agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("list_name", "email", name="uq_subscriber"),
    )
    op.create_table(
        "editions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "edition_entries",
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), primary_key=True),
        sa.Column("slug", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("approval", sa.String(80), nullable=False),
    )
    op.create_index("ix_edition_entries_slug", "edition_entries", ["slug"])
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("message_id", sa.String(200)),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("edition_id", "channel", "target", "recipient", name="uq_delivery"),
    )
    op.create_index("ix_deliveries_pending", "deliveries", ["edition_id", "status"])
    op.create_table(
        "suppressions",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("edition_id", sa.String(40)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index("ix_edition_entries_slug", table_name="edition_entries")
    op.drop_table("edition_entries")
    op.drop_table("editions")
    op.drop_table("subscribers")
