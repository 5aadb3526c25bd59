"""Writes a planned edition and its frozen recipients to the ledger, and reads its tally."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.content.approval import parsed
from bulletin.pipeline.planning import Plan
from bulletin.store import ledger
from bulletin.store.statuses import Channel, DeliveryStatus
from bulletin.store.subscribers import active

UNSETTLED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)  # still to send, or in flight


def recipients(
    db: sa.Connection, config: Config, edition: Plan, *, subscribers_too: bool = True
) -> list[tuple[str, str, str]]:
    """Everyone the edition goes to, frozen when it is recorded: (channel, target, address).

    Without `subscribers_too`, the subscriber lists are left out: `record` copies them
    inside the database.
    """
    found: list[tuple[str, str, str]] = []
    suppressed = ledger.suppressed(db)
    for key in edition.emails:
        mailing_list = config.lists[key]
        if mailing_list.external:
            addresses = [str(mailing_list.address)]
        elif subscribers_too:
            addresses = [s.email for s in active(db, key)]
        else:
            continue
        found += [(Channel.EMAIL, key, a) for a in addresses if a.lower() not in suppressed]
    for key in edition.partners:
        partner = config.partners[key]
        found.append((Channel.PARTNER, key, partner.webhook_shown or partner.email or key))
    return found


def would_send(engine: sa.Engine, config: Config, edition: Plan) -> dict[str, int]:
    """How many messages each list and partner would get: the dry run's answer."""
    counts: dict[str, int] = {}
    with engine.connect() as db:
        for _, target, _ in recipients(db, config, edition):
            counts[target] = counts.get(target, 0) + 1
    return counts


def record(engine: sa.Engine, config: Config, edition: Plan) -> int:
    """Write the edition and its recipients to the ledger; resumed editions are kept."""
    if edition.resumed or not edition.edition_id:
        return 0
    with engine.begin() as db:
        others = recipients(db, config, edition, subscribers_too=False)
        ledger.prepare(db, edition.edition_id, edition.entries, others, edition.published)
        carried = [a for e in edition.entries if (a := parsed(e)) is not None]
        ledger.link_edition(db, edition.edition_id, carried, edition.published)
        for key in edition.emails:
            if not config.lists[key].external:
                ledger.freeze_subscribers(db, edition.edition_id, key, edition.published)
        return ledger.count_pending(db, edition.edition_id)


def finish(engine: sa.Engine, edition: Plan) -> dict[tuple[str, str, str], int]:
    """Close the edition once nothing is pending; the ledger's counts for the report."""
    assert edition.edition_id
    with engine.begin() as db:
        tally = ledger.counts(db, edition.edition_id)
        if not any(status in UNSETTLED for (_, _, status) in tally):
            ledger.finish(db, edition.edition_id, dt.datetime.now(dt.UTC))
    return tally


def failures(engine: sa.Engine, edition: Plan) -> list[tuple[str, str, str]]:
    """What failed for good in the edition, and why: for the report."""
    assert edition.edition_id
    with engine.connect() as db:
        return ledger.failures(db, edition.edition_id)
