"""Records each signed approval, and the edition that carried it: the audit trail that
`bulletin approvals` lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.content.approval import Approval
from bulletin.store.database import approvals


@dataclass(frozen=True)
class Recorded:
    """An approval in the trail: when it was recorded, and the edition that carried it."""

    approval: Approval
    edition_id: str | None
    recorded_at: dt.datetime


def _row(approval: Approval, edition_id: str | None, now: dt.datetime) -> dict[str, object]:
    return {
        "slug": approval.slug,
        "path": approval.path,
        "content_hash": approval.content_hash,
        "approver": approval.approver,
        "approved_by": approval.approved_by,
        # In UTC: SQLite keeps no offset, and reads are taken as UTC.
        "approved_at": approval.approved_at.astimezone(dt.UTC),
        "signature": approval.signature,
        "edition_id": edition_id,
        "recorded_at": now.astimezone(dt.UTC),
    }


def _exists(db: sa.Connection, approval: Approval) -> bool:
    found = db.scalar(
        sa.select(approvals.c.id).where(
            approvals.c.slug == approval.slug, approvals.c.signature == approval.signature
        )
    )
    return found is not None


def record_approval(db: sa.Connection, approval: Approval, now: dt.datetime) -> None:
    """Add an approval to the trail, once."""
    if not _exists(db, approval):
        db.execute(approvals.insert().values(**_row(approval, None, now)))


def link_edition(
    db: sa.Connection, edition_id: str, carried: Sequence[Approval], now: dt.datetime
) -> None:
    """Mark the approvals an edition carries with that edition; an approval made on another
    machine (whose database this is not) joins the trail here."""
    for approval in carried:
        if not _exists(db, approval):
            db.execute(approvals.insert().values(**_row(approval, edition_id, now)))
            continue
        db.execute(
            approvals.update()
            .where(
                approvals.c.slug == approval.slug,
                approvals.c.signature == approval.signature,
                approvals.c.edition_id.is_(None),
            )
            .values(edition_id=edition_id)
        )


def trail(db: sa.Connection, slug: str | None = None) -> list[Recorded]:
    """Every approval recorded (of one entry, with `slug`), newest first."""
    query = sa.select(approvals).order_by(approvals.c.approved_at.desc(), approvals.c.id.desc())
    if slug is not None:
        query = query.where(approvals.c.slug == slug)
    return [
        Recorded(
            Approval(
                row.slug,
                row.path,
                row.content_hash,
                row.approver,
                row.approved_by,
                _aware(row.approved_at),
                row.signature,
            ),
            row.edition_id,
            _aware(row.recorded_at),
        )
        for row in db.execute(query)
    ]


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
