"""What came back about the addresses: bounces (the suppressions, from a 5xx during sending
or a permanent bounce report) and spam complaints (inbound reports that acted), for the
subscriber export, the reader's own data export, erasure and `bulletin status`.

Read-only but for `forget`: the ledger writes suppressions and `inbound.events` writes the
reports; erasure replaces the address in the reports by its keyed stand-in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulletin.store.database import inbound_events, suppressions

COMPLAINT = "complaint"
BOUNCE = "bounce"
ACTED = ("suppressed", "unsubscribed", "counted")  # outcomes of reports proven to be ours


@dataclass(frozen=True)
class Returned:
    """Why an address no longer gets editions: its state, the reason and since when."""

    state: str  # "bounced" or "complained"
    reason: str
    since: dt.datetime


def returned(db: sa.Connection, emails: Iterable[str]) -> dict[str, Returned]:
    """The bounced and complained addresses among `emails`, by lower-cased address; a
    complaint outranks a bounce."""
    wanted = {e.lower() for e in emails}
    found: dict[str, Returned] = {}
    if not wanted:
        return found
    rows = db.execute(sa.select(suppressions).where(suppressions.c.email.in_(sorted(wanted))))
    for row in rows:
        found[row.email] = Returned("bounced", row.reason, row.created_at)
    complaints = db.execute(
        sa.select(inbound_events.c.email, inbound_events.c.detail, inbound_events.c.received_at)
        .where(
            inbound_events.c.kind == COMPLAINT,
            inbound_events.c.outcome.in_(ACTED),
            inbound_events.c.email.in_(sorted(wanted)),
        )
        .order_by(inbound_events.c.received_at)
    )
    for row in complaints:
        reason = "spam complaint" + (f" ({row.detail})" if row.detail else "")
        found[row.email] = Returned("complained", reason, row.received_at)
    return found


def reports_of(db: sa.Connection, email: str) -> list[dict[str, Any]]:
    """Every report about the address that acted: bounces, complaints, unsubscribes."""
    rows = db.execute(
        sa.select(inbound_events)
        .where(inbound_events.c.email == email.lower(), inbound_events.c.outcome != "unmatched")
        .order_by(inbound_events.c.received_at)
    )
    return [
        {"kind": r.kind, "outcome": r.outcome, "edition": r.edition_id, "status": r.status,
         "permanent": r.permanent, "received_at": r.received_at.isoformat()}
        for r in rows
    ]  # fmt: skip


def per_edition(db: sa.Connection, edition_id: str) -> dict[str, Any]:
    """What came back about one edition: bounces (permanent, temporary) and complaints."""
    rows = db.execute(
        sa.select(inbound_events.c.kind, inbound_events.c.permanent, sa.func.count())
        .where(
            inbound_events.c.edition_id == edition_id,
            inbound_events.c.outcome.in_(ACTED),
            inbound_events.c.kind.in_((BOUNCE, COMPLAINT)),
        )
        .group_by(inbound_events.c.kind, inbound_events.c.permanent)
    )
    bounces = {"permanent": 0, "temporary": 0}
    complaints = 0
    for kind, permanent, count in rows:
        if kind == COMPLAINT:
            complaints += count
        else:
            bounces["permanent" if permanent else "temporary"] += count
    return {"bounces": bounces, "complaints": complaints}


def forget(db: sa.Connection, email: str, stand_in: str) -> None:
    """Erasure: the reports keep what happened and when, under the stand-in, nothing else."""
    db.execute(
        inbound_events.update()
        .where(sa.func.lower(inbound_events.c.email) == email.lower())
        .values(email=stand_in, detail=None)
    )
