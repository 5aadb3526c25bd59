"""Sends a recorded edition: the lists' email through the delivery engine, partners beside it.

Only the transports given here send anything.
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import Callable, Sequence

import sqlalchemy as sa

from bulletin.config import Config, MailingList
from bulletin.content.entries import Entry
from bulletin.delivery import engine as delivery
from bulletin.delivery import partners as syndication
from bulletin.delivery.engine import Job, Outcome, RateLimit, RetryPolicy
from bulletin.delivery.transports import Transport
from bulletin.errors import DeliveryError
from bulletin.mail.compiled import CompiledEmail
from bulletin.mail.dkim import DkimSigner
from bulletin.mail.message import Message
from bulletin.pipeline.planning import Plan
from bulletin.render.payloads import payload, webhook_id
from bulletin.store import ledger, locks
from bulletin.tokens import Signer, secret_key

Progress = Callable[[int, int], None]


def deliver(
    engine: sa.Engine,
    config: Config,
    edition: Plan,
    transport: Transport | Callable[[], Transport],
    progress: Progress | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    *,
    partner_transport: Transport | Callable[[str], Transport] | None = None,
    connections: int | None = None,
    retry: RetryPolicy | None = None,
    batch: ledger.Batch | None = None,
) -> None:
    """Send every pending delivery of the edition once, recording each in the ledger.

    `transport` is a transport, or a function that makes one per connection. Partners go
    at the same time, each in a thread of its own (`syndication`), through
    `partner_transport`: a transport, or a function that makes one for a partner's key
    (the email transport when not given). A failing partner holds up neither the email
    nor the other partners.

    With `batch`, only that slice of the email is sent, under the batch's own lock, so
    batches can run at once on several machines; partners are then `deliver_partners`'s,
    called once by whoever holds the edition's delivery lock.
    """
    assert edition.edition_id
    edition_id = edition.edition_id
    signer = Signer(secret_key(config.state_dir))
    dkim = DkimSigner.for_config(config)
    compiled = {
        key: CompiledEmail(config, email, edition_id, key, config.lists[key], dkim=dkim)
        for key, (email, _) in edition.emails.items()
    }
    deadlines = {key: _deadline(entries) for key, (_, entries) in edition.emails.items()}
    retry = retry or RetryPolicy(config.delivery.retry_attempts,
                                 config.delivery.retry_backoff_seconds)  # fmt: skip
    locked = (
        locks.batch_lock(engine, config, batch) if batch else locks.delivery_lock(engine, config)
    )
    with locked:
        with engine.begin() as db:
            ledger.reset_in_flight(db, edition_id, batch)
            total = ledger.count_pending(db, edition_id, batch, channel="email")

        def rows(after_id: int, limit: int) -> list[ledger.Pending]:
            with engine.connect() as db:
                return ledger.pending_page(db, edition_id, after_id, limit, batch, "email")

        def make(row: ledger.Pending, when: dt.datetime):
            deadline = deadlines.get(row.target)
            if deadline and when > deadline:
                return None, Outcome("skipped", f"send_not_after {deadline.isoformat()} passed")
            token = signer.unsubscribe_token(row.target, row.recipient)
            return compiled[row.target].personalise(row.recipient, token, when, row.name), None

        job = Job(
            rows=rows,
            total=total,
            make=make,
            transport_for={"email": _factory(transport)}.__getitem__,
            connections=connections or config.delivery.connections,
            retry=retry,
            rate=RateLimit(config.delivery.rate_per_second),
        )
        if batch is not None:
            delivery.run(engine, job, progress, now)
            return
        stop = threading.Event()
        partner_errors: list[BaseException] = []

        def partner_phase() -> None:
            try:
                _send_to_partners(
                    engine, config, edition, partner_transport, transport, retry, now, stop,
                    signer, dkim,
                )  # fmt: skip
            except BaseException as exc:
                partner_errors.append(exc)

        partners = threading.Thread(target=partner_phase, name="partners", daemon=True)
        partners.start()
        try:
            delivery.run(engine, job, progress, now)
        except DeliveryError:
            raise  # the email stopped (its server is down): the partners still finish
        except BaseException:
            stop.set()  # interrupted or crashed: partners still waiting are sent next run
            raise
        finally:
            partners.join()
        if partner_errors:
            raise partner_errors[0]


def deliver_partners(
    engine: sa.Engine,
    config: Config,
    edition: Plan,
    transport: Transport | Callable[[], Transport],
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    *,
    partner_transport: Transport | Callable[[str], Transport] | None = None,
    retry: RetryPolicy | None = None,
    stop: threading.Event | None = None,
) -> None:
    """The partner phase alone, for runs that send the email in batches.

    The caller holds the edition's delivery lock (`locks.delivery_lock`): partners in
    flight when a run died are due again, as `deliver` does for the whole edition.
    """
    assert edition.edition_id
    retry = retry or RetryPolicy(config.delivery.retry_attempts,
                                 config.delivery.retry_backoff_seconds)  # fmt: skip
    with engine.begin() as db:
        ledger.reset_in_flight(db, edition.edition_id, channel="partner")
    signer = Signer(secret_key(config.state_dir))
    _send_to_partners(
        engine, config, edition, partner_transport, transport, retry, now,
        stop or threading.Event(), signer, DkimSigner.for_config(config),
    )  # fmt: skip


def _send_to_partners(
    engine: sa.Engine,
    config: Config,
    edition: Plan,
    partner_transport: Transport | Callable[[str], Transport] | None,
    transport: Transport | Callable[[], Transport],
    retry: RetryPolicy,
    now: Callable[[], dt.datetime],
    stop: threading.Event,
    signer: Signer,
    dkim: DkimSigner | None,
) -> None:
    assert edition.edition_id
    syndication.run(
        engine, edition.edition_id, _partner_jobs(config, edition, signer, dkim),
        _partner_factory(partner_transport, transport), retry, now, stop,
    )  # fmt: skip


def _partner_jobs(
    config: Config, edition: Plan, signer: Signer, dkim: DkimSigner | None
) -> dict[str, syndication.PartnerJob]:
    """Each partner's message: a signed webhook's body, or an email like a list's."""
    assert edition.edition_id
    edition_id = edition.edition_id
    jobs = {}
    for key, entries in edition.partners.items():
        partner = config.partners[key]
        deadline = _deadline(entries)
        if key in edition.partner_emails:
            audience = MailingList(name=partner.name, address=partner.email)
            compiled = CompiledEmail(
                config, edition.partner_emails[key], edition_id, key, audience, dkim=dkim
            )
            token = signer.unsubscribe_token(key, str(partner.email))

            def make(when, compiled=compiled, token=token, address=str(partner.email)):
                return compiled.personalise(address, token, when)

        else:
            body = payload(config, edition_id, entries, edition.published, key)
            message = Message(
                "webhook", edition_id, key, str(partner.webhook), body, f"{key}-{edition_id}",
                message_id=webhook_id(config.site.url, edition_id, key),
            )  # fmt: skip

            def make(when, message=message):
                return message

        jobs[key] = syndication.PartnerJob(key, make, deadline)
    return jobs


def _partner_factory(
    partner_transport: Transport | Callable[[str], Transport] | None,
    transport: Transport | Callable[[], Transport],
) -> Callable[[str], Transport]:
    if partner_transport is None:
        email = _factory(transport)
        return lambda key: email()
    if hasattr(partner_transport, "send"):
        shared = partner_transport
        return lambda key: _Unclosed(shared)
    if not inspect.signature(partner_transport).parameters:
        make = partner_transport  # a factory that ignores the partner, as the email's
        return lambda key: make()
    return partner_transport


def _factory(transport: Transport | Callable[[], Transport]) -> Callable[[], Transport]:
    if hasattr(transport, "send"):
        shared = transport
        return lambda: _Unclosed(shared)
    return transport


class _Unclosed:
    """A transport shared by the whole run: the run's caller closes it, not each worker."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def send(self, message: Message) -> None:
        self._transport.send(message)

    def close(self) -> None:
        pass


def _deadline(entries: Sequence[Entry]) -> dt.datetime | None:
    deadlines = [e.send_not_after for e in entries if e.send_not_after]
    return min(deadlines) if deadlines else None
