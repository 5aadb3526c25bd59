"""Keeps the proof of each subscription's consent (GDPR art. 7(1)): how it was given (web
form, preferences page, import file and line, by whom), when it was asked and confirmed,
the SHA-256 of the consent text shown, and when it was withdrawn.

A web sign-up is a *request*: its rows wait, unconfirmed, for the confirmation link, which
names the request and confirms it once. Unsubscribing, leaving a list on the preferences
page, or erasing the address withdraws every row of that address and list, so an old
confirmation link can never bring the address back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from bulletin.store.database import consent_texts, consents
from bulletin.store.spreadsheets import csv_text


class Method(StrEnum):
    """How a subscription was made."""

    WEB_FORM = "web-form"  # /subscribe, then the confirmation link
    PREFERENCES = "preferences"  # a list joined on the preferences page (link sent by email)
    IMPORT = "import"  # `bulletin subscribers import`: consent collected outside bulletin


class Withdrawal(StrEnum):
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    ERASURE = "erasure"


@dataclass(frozen=True)
class ConsentText:
    """A consent text as a form shows it, and the template it came from."""

    language: str
    template: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Given:
    """How one consent was given, the same for each list it covers."""

    method: Method
    source: str
    language: str
    made_by: str = ""
    line: int | None = None
    source_sha256: str | None = None
    text: ConsentText | None = None


@dataclass(frozen=True)
class Request:
    """An open web sign-up: the address and the lists its confirmation link confirms."""

    email: str
    lists: list[str]
    language: str


def _keep_text(db: sa.Connection, text: ConsentText | None, now: dt.datetime) -> str | None:
    if text is None:
        return None
    known = db.execute(
        sa.select(consent_texts.c.sha256).where(consent_texts.c.sha256 == text.sha256)
    ).first()
    if known is None:
        db.execute(
            consent_texts.insert().values(
                sha256=text.sha256, language=text.language, template=text.template,
                text=text.text, first_shown_at=now,
            )
        )  # fmt: skip
    return text.sha256


def record(
    db: sa.Connection,
    email: str,
    list_keys: list[str],
    given: Given,
    now: dt.datetime,
    *,
    request_id: str | None = None,
) -> None:
    """Record consent for each list: confirmed now, or (with `request_id`) asked now and
    confirmed when the link naming the request is used."""
    text_sha256 = _keep_text(db, given.text, now)
    for key in list_keys:
        db.execute(
            consents.insert().values(
                request_id=request_id, list_name=key, email=email, method=given.method,
                source=given.source[:300], source_line=given.line,
                source_sha256=given.source_sha256, made_by=given.made_by[:200],
                language=given.language, text_sha256=text_sha256, asked_at=now,
                confirmed_at=None if request_id else now,
            )
        )  # fmt: skip


def record_many(db: sa.Connection, given: list[tuple[str, str, Given]], now: dt.datetime) -> None:
    """Record consents confirmed now, one per (address, list, how), in one statement: an
    import adds thousands at once."""
    if not given:
        return
    db.execute(
        consents.insert(),
        [
            {"request_id": None, "list_name": key, "email": email, "method": how.method,
             "source": how.source[:300], "source_line": how.line,
             "source_sha256": how.source_sha256, "made_by": how.made_by[:200],
             "language": how.language, "text_sha256": _keep_text(db, how.text, now),
             "asked_at": now, "confirmed_at": now}
            for email, key, how in given
        ],
    )  # fmt: skip


def open_request(db: sa.Connection, request_id: str) -> Request | None:
    """The request's address and the lists it can still confirm: none once it was used,
    withdrawn (the address left those lists) or erased."""
    rows = list(
        db.execute(
            sa.select(consents.c.email, consents.c.list_name, consents.c.language)
            .where(
                consents.c.request_id == request_id,
                consents.c.confirmed_at.is_(None),
                consents.c.withdrawn_at.is_(None),
            )
            .order_by(consents.c.id)
        )
    )
    if not rows:
        return None
    return Request(rows[0].email, [r.list_name for r in rows], rows[0].language)


def confirm(db: sa.Connection, request_id: str, list_key: str, now: dt.datetime) -> bool:
    """Confirm the request for one list; False when it was confirmed or withdrawn already
    (two clicks at once confirm it once)."""
    result = db.execute(
        consents.update()
        .where(
            consents.c.request_id == request_id,
            consents.c.list_name == list_key,
            consents.c.confirmed_at.is_(None),
            consents.c.withdrawn_at.is_(None),
        )
        .values(confirmed_at=now)
    )
    return result.rowcount > 0


def withdraw(
    db: sa.Connection, email: str, list_key: str, now: dt.datetime, how: Withdrawal
) -> None:
    """The address (as stored: the index finds it) left the list: its consent there ends,
    and its open requests with it."""
    db.execute(
        consents.update()
        .where(
            consents.c.email == email,
            consents.c.list_name == list_key,
            consents.c.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now, withdrawn_how=how)
    )


def forget(db: sa.Connection, email: str, stand_in: str, now: dt.datetime) -> None:
    """Erasure (GDPR art. 17): requests never confirmed go; a confirmed consent keeps only
    what proves it (how, when, which text, when it ended) under `stand_in`, the keyed hash
    the ledger uses, so the address itself is gone but the proof can be found again from it.
    """
    mine = sa.func.lower(consents.c.email) == email.lower()
    db.execute(consents.delete().where(mine, consents.c.confirmed_at.is_(None)))
    db.execute(
        consents.update()
        .where(mine, consents.c.withdrawn_at.is_(None))
        .values(withdrawn_at=now, withdrawn_how=Withdrawal.ERASURE)
    )
    db.execute(consents.update().where(mine).values(email=stand_in, language=""))


def purge_unconfirmed(db: sa.Connection, before: dt.datetime) -> None:
    """Requests never confirmed whose link has expired: no consent, so no record."""
    db.execute(
        consents.delete().where(consents.c.confirmed_at.is_(None), consents.c.asked_at < before)
    )


def _when(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _query(where: Any) -> sa.Select[Any]:
    return (
        sa.select(consents, consent_texts.c.text)
        .outerjoin(consent_texts, consent_texts.c.sha256 == consents.c.text_sha256)
        .where(where)
        .order_by(consents.c.id)
    )


def _record(row: sa.Row[Any]) -> dict[str, Any]:
    return {
        "list": row.list_name,
        "method": row.method,
        "source": row.source,
        "source_line": row.source_line,
        "source_sha256": row.source_sha256,
        "made_by": row.made_by,
        "language": row.language,
        "asked_at": _when(row.asked_at),
        "confirmed_at": _when(row.confirmed_at),
        "withdrawn_at": _when(row.withdrawn_at),
        "withdrawn_how": row.withdrawn_how,
        "consent_text_sha256": row.text_sha256,
        "consent_text": row.text,
    }


def of_address(db: sa.Connection, email: str) -> list[dict[str, Any]]:
    """Every consent record of the address, for its owner's data export."""
    return [
        _record(r) for r in db.execute(_query(sa.func.lower(consents.c.email) == email.lower()))
    ]


CSV_COLUMNS = [
    "email", "list", "method", "source", "source_line", "source_sha256", "made_by",
    "language", "asked_at", "confirmed_at", "withdrawn_at", "withdrawn_how",
    "consent_text_sha256", "consent_text",
]  # fmt: skip


def export_csv(engine: sa.Engine, list_key: str) -> str:
    """The consent records of a list as CSV (erased addresses appear as their stand-in)."""
    with engine.connect() as db:
        rows = list(db.execute(_query(consents.c.list_name == list_key)))
    return csv_text(CSV_COLUMNS, ([row.email, *_record(row).values()] for row in rows))
