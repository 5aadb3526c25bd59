"""Proof of consent: the consents of each subscription and the consent texts shown.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Written by hand to mirror `bulletin.store.database.metadata`; tests/test_database.py checks
that the migrated schema and the metadata agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.String(40)),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("source_line", sa.Integer),
        sa.Column("source_sha256", sa.String(64)),
        sa.Column("made_by", sa.String(200), nullable=False),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("text_sha256", sa.String(64)),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_how", sa.String(20)),
    )
    op.create_index("ix_consents_email", "consents", ["email"])
    op.create_index("ix_consents_request", "consents", ["request_id"])
    op.create_table(
        "consent_texts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("language", sa.String(20), nullable=False),
        sa.Column("template", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("first_shown_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_texts")
    op.drop_index("ix_consents_request", "consents")
    op.drop_index("ix_consents_email", "consents")
    op.drop_table("consents")
