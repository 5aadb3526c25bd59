"""The delivery ledger: records editions and every delivery, so that nothing is sent twice
and a rerun resumes.

The one owner of the tables `editions`, `edition_entries`, `deliveries`,
`suppressions` and `approvals`: the publish pipeline, the delivery engine, the partner phase and the
subscribers' own actions write them only through these names (a test holds every other
module of bulletin to that).

editions    each edition with its entries and frozen recipients; its tally; closing it
claims      what is left to send; the claim on each message and its outcome (the engine's
            hot path); the partners' rows; suppressing an address that bounced for good
addresses   one address out of the unsent deliveries: leaving a list, being forgotten
attempts    every attempt at a delivery; an edition's failures, retryable or final
resends     what a resend sends again: failed deliveries reopened, the rest skipped
approvals   the audit trail of signed approvals, and the editions that carried them
"""

from bulletin.store.ledger.addresses import forget_recipient, skip_pending_for
from bulletin.store.ledger.approvals import Recorded, link_edition, record_approval, trail
from bulletin.store.ledger.attempts import Attempt, Failure, history
from bulletin.store.ledger.attempts import failures as failed_deliveries
from bulletin.store.ledger.claims import (
    Batch,
    Claims,
    PartnerRow,
    Pending,
    Settled,
    batches,
    count_pending,
    mark_sending,
    pending_page,
    pending_partners,
    record_partners,
    reset_in_flight,
    suppress,
    suppressed,
)
from bulletin.store.ledger.editions import (
    EditionRecord,
    all_editions,
    counts,
    failures,
    finish,
    freeze_subscribers,
    in_brief,
    next_edition_id,
    prepare,
    published_slugs,
    unfinished,
)
from bulletin.store.ledger.resends import Reopened, approvals, outcomes, reopen

__all__ = [
    "Attempt",
    "Batch",
    "Claims",
    "EditionRecord",
    "Failure",
    "PartnerRow",
    "Pending",
    "Recorded",
    "Reopened",
    "Settled",
    "all_editions",
    "approvals",
    "batches",
    "count_pending",
    "counts",
    "failed_deliveries",
    "failures",
    "finish",
    "forget_recipient",
    "freeze_subscribers",
    "history",
    "in_brief",
    "link_edition",
    "mark_sending",
    "next_edition_id",
    "outcomes",
    "pending_page",
    "pending_partners",
    "prepare",
    "published_slugs",
    "record_approval",
    "record_partners",
    "reopen",
    "reset_in_flight",
    "skip_pending_for",
    "suppress",
    "suppressed",
    "trail",
    "unfinished",
]
