"""Names the statuses that deliveries, editions and subscribers go through, and the channels.

Each is a `StrEnum`: a member equals, hashes and prints as the string the database stores,
so rows read back as plain strings compare equal to the members.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """pending → sending → sent | failed | skipped.

    A temporary failure goes back to pending, due again later. `sending` is the one message
    in flight on a connection: a run that dies leaves it so, and the next run sends it again.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class EditionStatus(StrEnum):
    """prepared → done; an edition not done is resumed by the next publish."""

    PREPARED = "prepared"
    DONE = "done"


class SubscriberStatus(StrEnum):
    """pending (signed up on the web, not confirmed yet) → active → unsubscribed.

    suppressed (a permanent bounce) is set by delivery. Only active subscribers are frozen
    into an edition's ledger, so a pending address receives nothing until it is confirmed.
    """

    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"


class Channel(StrEnum):
    """How a delivery goes: by email to a list's address, or to a partner (webhook or email)."""

    EMAIL = "email"
    PARTNER = "partner"
