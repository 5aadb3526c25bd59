"""The approvals table: the audit trail of signed approvals and the editions that carried them.

Revision ID: 0002
Revises: 0005
Create Date: 2026-11-29

Written by hand to mirror `bulletin.store.database.approvals`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(80), nullable=False),
        sa.Column("approver", sa.String(100), nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signature", sa.String(100), nullable=False),
        sa.Column("edition_id", sa.String(40), sa.ForeignKey("editions.id")),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("slug", "signature", name="uq_approval"),
    )


def downgrade() -> None:
    op.drop_table("approvals")
