"""Reopens what an edition did not deliver, for a resend: its failed (or still pending)
deliveries become due again, except those that must never go (the address suppressed,
unsubscribed or erased since, the entries' `send_not_after` passed), which are skipped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa

from bulletin.store.database import deliveries, edition_entries, editions, subscribers, suppressions
from bulletin.store.ledger.attempts import Attempt, add
from bulletin.store.statuses import Channel, DeliveryStatus, EditionStatus, SubscriberStatus

PENDING, SKIPPED = DeliveryStatus.PENDING, DeliveryStatus.SKIPPED
UNDELIVERED = (DeliveryStatus.FAILED, DeliveryStatus.PENDING, DeliveryStatus.SENDING)
_CHUNK = 500  # ids per statement


@dataclass
class Reopened:
    """What a resend sends again (`ids`, with how many per list or partner) and what it
    leaves out, each with why."""

    ids: list[int] = field(default_factory=list)
    per_target: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, key)
    skipped: list[tuple[str, str, str, str]] = field(default_factory=list)  # + recipient, why


def approvals(db: sa.Connection, edition_id: str) -> dict[str, str] | None:
    """Each entry of the edition with its approval as it went out; None for no such edition."""
    if db.scalar(sa.select(editions.c.id).where(editions.c.id == edition_id)) is None:
        return None
    rows = db.execute(
        sa.select(edition_entries.c.slug, edition_entries.c.approval)
        .where(edition_entries.c.edition_id == edition_id)
        .order_by(edition_entries.c.position)
    )
    return {slug: approval for slug, approval in rows}


def reopen(
    db: sa.Connection,
    edition_id: str,
    targets: Mapping[tuple[str, str], dt.datetime | None],
    subscriber_lists: Collection[str],
    now: dt.datetime,
    *,
    dry_run: bool = False,
) -> Reopened:
    """Make the edition's undelivered rows to `targets` ((channel, key) → the entries'
    earliest `send_not_after`) due again, and reopen the edition; all in `db`'s
    transaction. Rows that must not go are skipped, each with its reason. On a list in
    `subscriber_lists`, only an address still subscribed (active) is sent to.

    With `dry_run` nothing is written: the answer says what would be done.
    """
    member = subscribers.c.status.label("member")
    rows = db.execute(
        sa.select(
            deliveries.c.id, deliveries.c.channel, deliveries.c.target, deliveries.c.recipient,
            member, suppressions.c.reason,
        )
        .select_from(
            deliveries.outerjoin(
                subscribers,
                sa.and_(subscribers.c.list_name == deliveries.c.target,
                        subscribers.c.email == deliveries.c.recipient),
            ).outerjoin(suppressions, suppressions.c.email == sa.func.lower(deliveries.c.recipient))
        )
        .where(deliveries.c.edition_id == edition_id, deliveries.c.status.in_(UNDELIVERED))
        .order_by(deliveries.c.id)
    )  # fmt: skip
    found = Reopened()
    skips: list[tuple[int, str]] = []
    for row_id, channel, target, recipient, status, suppressed in rows:
        if (channel, target) not in targets:
            continue
        why = _why_not(channel, target, status, suppressed, targets[(channel, target)],
                       target in subscriber_lists, now)  # fmt: skip
        if why:
            skips.append((row_id, why))
            found.skipped.append((channel, target, recipient, why))
            continue
        found.ids.append(row_id)
        found.per_target[(channel, target)] = found.per_target.get((channel, target), 0) + 1
    if dry_run:
        return found
    for why in {why for _, why in skips}:
        ids = [row_id for row_id, reason in skips if reason == why]
        for chunk in _chunks(ids):
            db.execute(
                deliveries.update()
                .where(deliveries.c.id.in_(chunk))
                .values(status=SKIPPED, detail=why, next_attempt_at=None, updated_at=now)
            )
        add(db, [Attempt(row_id, now, SKIPPED, f"not resent: {why}") for row_id in ids])
    for chunk in _chunks(found.ids):
        # Attempts count afresh: each resend gets the whole retry policy; the history keeps
        # every earlier attempt.
        db.execute(
            deliveries.update()
            .where(deliveries.c.id.in_(chunk))
            .values(status=PENDING, attempts=0, next_attempt_at=None, updated_at=now)
        )
    if found.ids:
        db.execute(
            editions.update()
            .where(editions.c.id == edition_id)
            .values(status=EditionStatus.PREPARED, finished_at=None)
        )
    return found


def _why_not(
    channel: str,
    target: str,
    status: str | None,
    suppressed: str | None,
    deadline: dt.datetime | None,
    on_subscriber_list: bool,
    now: dt.datetime,
) -> str | None:
    if deadline is not None and now > deadline:
        return f"send_not_after {deadline.isoformat()} passed"
    if channel != Channel.EMAIL:
        return None
    if suppressed is not None:
        return "suppressed: the address bounced for good"
    if on_subscriber_list and status is None:
        return f"no longer on list {target} (erased or removed)"
    if on_subscriber_list and status != SubscriberStatus.ACTIVE:
        return f"{status} since"  # unsubscribed since, suppressed since
    return None


def outcomes(db: sa.Connection, ids: list[int]) -> dict[tuple[str, str, str], int]:
    """(channel, target, status) → how many of these deliveries ended so."""
    found: dict[tuple[str, str, str], int] = {}
    for chunk in _chunks(ids):
        rows = db.execute(
            sa.select(deliveries.c.channel, deliveries.c.target, deliveries.c.status,
                      sa.func.count())
            .where(deliveries.c.id.in_(chunk))
            .group_by(deliveries.c.channel, deliveries.c.target, deliveries.c.status)
        )  # fmt: skip
        for channel, target, status, count in rows:
            key = (channel, target, status)
            found[key] = found.get(key, 0) + count
    return found


def _chunks(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
