"""The reader's own actions from the web service: sign-up and its confirmation, unsubscribe,
preferences, and the rights of access and erasure (GDPR art. 15, 17 and 20).

Statuses (SubscriberStatus): pending (signed up on the web, not confirmed yet) → active →
unsubscribed; suppressed (a permanent bounce) is set by delivery. Each change of consent is
recorded by `consent` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.store import consent, ledger
from bulletin.store.database import deliveries, subscribers, suppressions
from bulletin.store.statuses import Channel, SubscriberStatus
from bulletin.store.subscribers import open_lists, rows_of

PENDING, ACTIVE = SubscriberStatus.PENDING, SubscriberStatus.ACTIVE
UNSUBSCRIBED, SUPPRESSED = SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.SUPPRESSED


def request_subscription(
    engine: sa.Engine,
    email: str,
    list_keys: list[str],
    given: consent.Given,
    request_id: str,
    now: dt.datetime,
) -> None:
    """Record a web sign-up: the address is pending on each list it is not on yet, and the
    request (`request_id`, named by the confirmation link) waits for confirmation.

    Rows that exist keep their status (an active subscriber stays active, one who left stays
    out) until the address confirms; the caller answers the same in every case.
    """
    with engine.begin() as db:
        language = given.language
        _join(db, email, list_keys, language, now, PENDING,
              lambda row: {"language": language} if row.status == PENDING else None)  # fmt: skip
        for key, stored in _stored(db, email, list_keys).items():
            consent.record(db, stored, [key], given, now, request_id=request_id)


def _stored(db: sa.Connection, email: str, list_keys: list[str]) -> dict[str, str]:
    """The address as each list's row stores it: consent rows use the same spelling, so
    that leaving a list (which finds them by it) withdraws them all."""
    return {row.list_name: row.email for row in rows_of(db, email, list_keys)}


def open_request(engine: sa.Engine, request_id: str) -> consent.Request | None:
    """The sign-up a confirmation link names, while it can still be confirmed."""
    with engine.connect() as db:
        return consent.open_request(db, request_id)


def confirm_request(engine: sa.Engine, request_id: str, now: dt.datetime) -> list[str]:
    """The address proved it is reachable and wants the lists: it becomes active on each
    list the request still covers, once. Lists it left since (or an erasure) stay out, as
    does a suppressed address (delivery decided it bounces for good). The lists confirmed.
    """
    with engine.begin() as db:
        request = consent.open_request(db, request_id)
        if request is None:
            return []
        confirmed = [k for k in request.lists if consent.confirm(db, request_id, k, now)]
        _join(
            db, request.email, confirmed, request.language, now, ACTIVE, _activate(request.language)
        )
        return confirmed


def _activate(language: str) -> Callable[[sa.Row[Any]], dict[str, Any] | None]:
    return lambda row: (
        None if row.status == SUPPRESSED else {"status": ACTIVE, "language": language}
    )


def _join(
    db: sa.Connection,
    email: str,
    list_keys: list[str],
    language: str,
    now: dt.datetime,
    status: str,
    changes: Callable[[sa.Row[Any]], dict[str, Any] | None],
) -> None:
    """Add the address to each list it is not on with `status`; change the rows it is on
    as `changes` says (None: leave the row as it is)."""
    present = {row.list_name: row for row in rows_of(db, email, list_keys)}
    for key in list_keys:
        row = present.get(key)
        if row is None:
            db.execute(
                subscribers.insert().values(
                    list_name=key, email=email, name="", language=language,
                    status=status, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        elif (values := changes(row)) is not None:
            db.execute(
                subscribers.update()
                .where(subscribers.c.id == row.id)
                .values(**values, updated_at=now)
            )


def unsubscribe(engine: sa.Engine, list_key: str, email: str, now: dt.datetime) -> None:
    """Take the address off the list, and out of any edition still being sent to it; its
    consent there is withdrawn, open sign-up requests included."""
    with engine.begin() as db:
        db.execute(
            subscribers.update()
            .where(
                # The token holds the address as stored, so the unique index finds the row.
                subscribers.c.list_name == list_key,
                subscribers.c.email == email,
                subscribers.c.status.in_([ACTIVE, PENDING]),
            )
            .values(status=UNSUBSCRIBED, updated_at=now)
        )
        consent.withdraw(db, email, list_key, now, consent.Withdrawal.UNSUBSCRIBE)
        ledger.skip_pending_for(db, email, "unsubscribed", now, list_key)


@dataclass(frozen=True)
class Subscription:
    list_key: str
    status: str
    language: str


def subscriptions(engine: sa.Engine, email: str) -> list[Subscription]:
    """Every list row of the address, whatever its status."""
    with engine.connect() as db:
        return [Subscription(r.list_name, r.status, r.language) for r in rows_of(db, email)]


def set_preferences(
    engine: sa.Engine,
    config: Config,
    email: str,
    wanted: set[str],
    given: consent.Given,
    now: dt.datetime,
) -> None:
    """The address is on exactly the `wanted` open lists, in `given.language`; it proved it
    is reachable (its link came by email), so a list it joins here is active at once, with
    `given` as the proof of its consent."""
    lists = open_lists(config)
    language = given.language
    with engine.begin() as db:
        rows = {row.list_name: row for row in rows_of(db, email, list(lists))}
        joined = [key for key in lists if key in wanted]
        new = [k for k in joined if k not in rows or rows[k].status in (PENDING, UNSUBSCRIBED)]
        _join(db, email, joined, language, now, ACTIVE, _activate(language))
        for key, stored in _stored(db, email, new).items():
            consent.record(db, stored, [key], given, now)
        for key in lists:
            row = rows.get(key)
            if key in wanted or row is None or row.status not in (ACTIVE, PENDING):
                continue
            db.execute(
                subscribers.update()
                .where(subscribers.c.id == row.id)
                .values(status=UNSUBSCRIBED, language=language, updated_at=now)
            )
            consent.withdraw(db, row.email, key, now, consent.Withdrawal.PREFERENCES)
            ledger.skip_pending_for(db, email, "unsubscribed", now, key)


def _when(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def personal_data(engine: sa.Engine, config: Config, email: str) -> dict[str, Any]:
    """Everything bulletin holds about the address (GDPR art. 15 and 20), as JSON data:
    its lists, the deliveries to it, its bounce record and the proof of its consents."""
    with engine.connect() as db:
        rows = rows_of(db, email)
        sent = db.execute(
            sa.select(
                deliveries.c.edition_id,
                deliveries.c.target,
                deliveries.c.status,
                deliveries.c.updated_at,
            )
            .where(
                deliveries.c.channel == Channel.EMAIL,
                sa.func.lower(deliveries.c.recipient) == email.lower(),
            )
            .order_by(deliveries.c.id)
        )
        deliveries_out = [
            {"edition": r.edition_id, "list": r.target, "status": r.status,
             "updated_at": _when(r.updated_at)}
            for r in sent
        ]  # fmt: skip
        bounce = db.execute(
            sa.select(suppressions).where(suppressions.c.email == email.lower())
        ).first()
        consents = consent.of_address(db, email)
    return {
        "email": email,
        "subscriptions": [
            {
                "list": r.list_name,
                "list_name": config.lists[r.list_name].name
                if r.list_name in config.lists
                else r.list_name,
                "status": r.status,
                "name": r.name,
                "language": r.language,
                "created_at": _when(r.created_at),
                "updated_at": _when(r.updated_at),
            }
            for r in rows
        ],
        "deliveries": deliveries_out,
        "suppressed": {"reason": bounce.reason, "since": _when(bounce.created_at)}
        if bounce
        else None,
        "consents": consents,
    }


def erase(engine: sa.Engine, email: str, stand_in: str, now: dt.datetime) -> None:
    """Forget the address (GDPR art. 17): its list rows and bounce record go; in the ledger
    and the consent records a keyed hash (`stand_in`) replaces it, so each delivery row
    still says the edition went out and is never sent again, nothing still pending goes to
    it, and the proof of a consent it gave survives without the address."""
    address = email.lower()
    with engine.begin() as db:
        db.execute(subscribers.delete().where(sa.func.lower(subscribers.c.email) == address))
        consent.forget(db, email, stand_in, now)
        ledger.forget_recipient(db, email, stand_in, now)


def purge_unconfirmed(engine: sa.Engine, before: dt.datetime) -> int:
    """Sign-ups never confirmed, whose link has expired, are deleted: no consent, no data."""
    with engine.begin() as db:
        consent.purge_unconfirmed(db, before)
        result = db.execute(
            subscribers.delete().where(
                subscribers.c.status == PENDING, subscribers.c.updated_at < before
            )
        )
        return result.rowcount
