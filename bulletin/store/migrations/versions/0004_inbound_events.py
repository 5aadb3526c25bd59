"""What came back: one row per bounce, complaint, unsubscribe or other message processed.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-29

The soft-bounce count of an address is its temporary bounces here within the site's window;
`message_key` (a digest of the message) makes processing the same message twice a no-op.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("list_name", sa.String(100)),
        sa.Column("edition_id", sa.String(40)),
        sa.Column("status", sa.String(20)),
        sa.Column("permanent", sa.Boolean),
        sa.Column("detail", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("message_key", name="uq_inbound_message"),
    )
    op.create_index("ix_inbound_events_email", "inbound_events", ["email", "kind"])


def downgrade() -> None:
    op.drop_index("ix_inbound_events_email", table_name="inbound_events")
    op.drop_table("inbound_events")
