"""Decides what a classified message proves and does: only a report that names mail bulletin
sent acts — through a VERP token that verifies, or a Message-ID of ours quoted for that same
address (the ledger knows them). Anything else is `unmatched` and changes nothing, so a
forged bounce cannot unsubscribe anyone.

A permanent bounce suppresses the address at once; temporary ones are counted, and
`soft_bounce_limit` of them within `soft_bounce_days` suppress; a complaint takes the
address off every list; a mailto unsubscribe takes it off the list it came from.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.config.people import Inbound
from bulletin.inbound import events
from bulletin.inbound.classify import Classification
from bulletin.mail.builder import message_id_domain
from bulletin.mail.verp import BOUNCE, UNSUBSCRIBE, Verp
from bulletin.store import ledger, memberships
from bulletin.store.database import deliveries
from bulletin.store.statuses import Channel
from bulletin.tokens import Signer

_SUBJECT_TOKEN = re.compile(r"unsubscribe\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Proof:
    """Whom a report is proven to be about: a delivery of ours (address, list, edition)."""

    email: str
    list_key: str
    edition_id: str | None
    how: str  # verp | message-id | token


class Policy:
    """The site's rules for what comes back, bound to its key and database."""

    def __init__(self, config: Config, signer: Signer) -> None:
        self.settings = config.inbound or Inbound(return_path=f"bounces@{config.sender.domain}")
        self.verp = Verp.for_config(config, signer)
        self.signer = signer
        domain = re.escape(message_id_domain(config)).encode()
        self._message_ids = re.compile(rb"<([A-Za-z0-9._-]{1,200})@" + domain + rb">", re.I)
        self._domain = message_id_domain(config)

    def prove(self, db: sa.Connection, data: bytes, found: Classification) -> Proof | None:
        """The delivery the message is about, if it proves one; else None."""
        if found.kind == "unsubscribe":
            return self._prove_unsubscribe(db, data)
        if found.kind not in ("bounce", "complaint"):
            return None
        # A complaint encloses our message: its Return-Path or its List-Unsubscribe tag.
        wanted = (BOUNCE,) if found.kind == "bounce" else (BOUNCE, UNSUBSCRIBE)
        for tag in self.verp.tags(data) if self.verp else []:
            if tag.purpose in wanted:
                row = self._delivery(db, f"<{tag.edition_id}.{tag.name}@{self._domain}>")
                if row is not None:
                    return Proof(row.email, row.list_key, row.edition_id, "verp")
        for match in self._message_ids.finditer(data):
            message_id = f"<{match.group(1).decode('ascii')}@{self._domain}>"
            row = self._delivery(db, message_id)
            if row is None:
                continue
            # The Message-ID must be one we sent to the address the report is about.
            if found.recipient is None or found.recipient == row.email.lower():
                return Proof(row.email, row.list_key, row.edition_id, "message-id")
        return None

    def _prove_unsubscribe(self, db: sa.Connection, data: bytes) -> Proof | None:
        for tag in self.verp.tags(data) if self.verp else []:
            if tag.purpose == UNSUBSCRIBE:
                row = self._delivery(db, f"<{tag.edition_id}.{tag.name}@{self._domain}>")
                if row is not None:
                    return Proof(row.email, row.list_key, row.edition_id, "verp")
        # Without [inbound], the mailto carries the web link's token in its subject.
        head = data[: data.find(b"\n\n") if b"\n\n" in data else 8192].decode("ascii", "replace")
        for match in _SUBJECT_TOKEN.finditer(head):
            fields = self.signer.verify("unsubscribe", match.group(1))
            if fields and len(fields) == 2:
                return Proof(fields[1], fields[0], None, "token")
        return None

    def _delivery(self, db: sa.Connection, message_id: str) -> Proof | None:
        """The email delivery of ours with that Message-ID, as a proof by `message-id`."""
        edition_id = message_id[1:].partition(".")[0]
        row = db.execute(
            sa.select(deliveries.c.recipient, deliveries.c.target, deliveries.c.edition_id)
            .where(
                deliveries.c.edition_id == edition_id,
                deliveries.c.channel == Channel.EMAIL,
                sa.func.lower(deliveries.c.message_id) == message_id.lower(),
            )
            .limit(1)
        ).first()
        return None if row is None else Proof(row.recipient, row.target, row.edition_id, "")

    def act(
        self,
        engine: sa.Engine,
        key: str,
        found: Classification,
        proof: Proof | None,
        now: dt.datetime,
    ) -> events.Event:
        """Do what the proven report asks, and record it (once: `key`) in the same go."""
        if found.kind in ("auto-reply", "other"):
            event = events.Event(found.kind, "ignored", found.recipient, detail=found.detail)
        elif proof is None:
            event = events.Event(found.kind, "unmatched", found.recipient, None, None,
                                 found.status, found.permanent, found.detail)  # fmt: skip
        elif found.kind == "unsubscribe":
            memberships.unsubscribe(engine, proof.list_key, proof.email, now)
            event = self._event(found, proof, "unsubscribed")
        elif found.kind == "complaint":
            for item in memberships.subscriptions(engine, proof.email):
                memberships.unsubscribe(engine, item.list_key, proof.email, now)
            event = self._event(found, proof, "unsubscribed")
        else:
            with engine.begin() as db:
                return self._bounce(db, key, found, proof, now)
        with engine.begin() as db:
            events.record(db, key, event, now)
        return event

    def _bounce(
        self, db: sa.Connection, key: str, found: Classification, proof: Proof, now: dt.datetime
    ) -> events.Event:
        settings = self.settings
        status = found.status or ("5.0.0" if found.permanent else "4.0.0")
        if found.permanent:
            reason = f"bounced for good ({status}) after edition {proof.edition_id}"
            if found.detail:
                reason += f": {found.detail[:200]}"
            ledger.suppress(db, proof.email, reason, now)
            ledger.skip_pending_for(db, proof.email, "suppressed: " + reason, now)
            event = self._event(found, proof, "suppressed")
            events.record(db, key, event, now)
            return event
        events.record(db, key, self._event(found, proof, "counted"), now)
        since = now - dt.timedelta(days=settings.soft_bounce_days)
        count = events.soft_bounces(db, proof.email, since)
        if count < settings.soft_bounce_limit:
            return self._event(found, proof, "counted")
        reason = (
            f"{count} temporary bounces within {settings.soft_bounce_days} days "
            f"(the last {status}, edition {proof.edition_id})"
        )
        ledger.suppress(db, proof.email, reason, now)
        ledger.skip_pending_for(db, proof.email, "suppressed: " + reason, now)
        return self._event(found, proof, "suppressed")

    @staticmethod
    def _event(found: Classification, proof: Proof, outcome: str) -> events.Event:
        return events.Event(
            found.kind, outcome, proof.email.lower(), proof.list_key, proof.edition_id,
            found.status, found.permanent, f"{proof.how}: {found.detail}".strip(": "),
        )  # fmt: skip
