"""Takes one address out of the ledger's unsent deliveries: when it leaves a list, and when
it asks to be forgotten."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from bulletin.store.database import deliveries, editions, suppressions
from bulletin.store.ledger.attempts import scrub
from bulletin.store.statuses import Channel, DeliveryStatus, EditionStatus

PENDING, SENDING, SKIPPED = DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SKIPPED


def skip_pending_for(
    db: sa.Connection, email: str, why: str, now: dt.datetime, list_key: str | None = None
) -> None:
    """Deliveries of unfinished editions not yet sent to `email` (on `list_key`) are skipped."""
    where = [
        # Only unfinished editions have pending deliveries: their ids keep this on the index.
        deliveries.c.edition_id.in_(
            sa.select(editions.c.id).where(editions.c.status != EditionStatus.DONE)
        ),
        deliveries.c.channel == Channel.EMAIL,
        sa.func.lower(deliveries.c.recipient) == email.lower(),
        deliveries.c.status == PENDING,
    ]
    if list_key is not None:
        where.append(deliveries.c.target == list_key)
    db.execute(deliveries.update().where(*where).values(status=SKIPPED, detail=why, updated_at=now))


def forget_recipient(db: sa.Connection, email: str, stand_in: str, now: dt.datetime) -> None:
    """Forget the address in the ledger (GDPR art. 17): its bounce record goes; a keyed hash
    (`stand_in`) replaces it in each delivery row, which still says the edition went out and
    is never sent again; nothing still pending or in flight goes to it."""
    address = email.lower()
    db.execute(suppressions.delete().where(suppressions.c.email == address))
    mine = sa.func.lower(deliveries.c.recipient) == address
    db.execute(
        deliveries.update()
        .where(mine, deliveries.c.status.in_([PENDING, SENDING]))
        .values(status=SKIPPED, detail="erased at the subscriber's request", updated_at=now)
    )
    db.execute(
        deliveries.update()
        .where(mine)
        .values(
            recipient=stand_in,
            detail=sa.func.replace(sa.func.coalesce(deliveries.c.detail, ""), email, stand_in),
        )
    )
    scrub(db, email, stand_in)
