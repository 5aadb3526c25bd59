"""The publish pipeline: validate → choose → render → check → record → write → deliver.

Each step is a function a Prefect task can wrap. Everything is validated, rendered and
checked before the first side effect; only `write_public` touches public/ and only the
transport given to `deliver` sends anything.
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from bulletin import delivery, ledger, syndication
from bulletin.approval import approval_problem, is_publishable
from bulletin.compliance import Output, check_outputs, feed_outputs, near_misses
from bulletin.config import Config, MailingList
from bulletin.database import suppressions
from bulletin.delivery import Job, Outcome, RateLimit, RetryPolicy
from bulletin.dkim import DkimSigner
from bulletin.entries import Entry, load_entries
from bulletin.errors import ContentError, DeliveryError, Problem, raise_for
from bulletin.feeds import atom, filtered_feeds, rss
from bulletin.messages import CompiledEmail, Message
from bulletin.partners import matching, payload, webhook_id
from bulletin.render import EditionInfo, RenderedEmail, Renderer
from bulletin.subscribers import active
from bulletin.tokens import Signer, secret_key
from bulletin.transports import Transport

Progress = Callable[[int, int], None]


def validate(config: Config, paths: Sequence = ()) -> tuple[list[Entry], list[Problem]]:
    """Load the entries and find every problem: content, approval, near-miss disclaimers."""
    loaded = load_entries(config, paths)
    problems = list(loaded.problems)
    live = [e for e in loaded.entries if e.status != "withdrawn"]
    problems += [p for e in loaded.entries if (p := approval_problem(e)) is not None]
    problems += near_misses(config, live)
    return loaded.entries, problems


@dataclass
class Plan:
    """What a publish will do, fully rendered and checked, before anything is sent."""

    edition_id: str | None
    entries: list[Entry]
    published: dt.datetime
    resumed: bool = False
    emails: dict[str, tuple[RenderedEmail, list[Entry]]] = field(default_factory=dict)
    partners: dict[str, list[Entry]] = field(default_factory=dict)
    partner_emails: dict[str, RenderedEmail] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def choose(
    entries: Sequence[Entry],
    published: set[str],
    slugs: Sequence[str],
    now: dt.datetime,
) -> tuple[list[Entry], list[Problem], list[str]]:
    """The entries of the next edition, problems with the slugs asked for, and notes."""
    by_slug = {e.slug: e for e in entries}
    problems: list[Problem] = []
    notes: list[str] = []
    if slugs:
        chosen = []
        for slug in dict.fromkeys(slugs):
            entry = by_slug.get(slug)
            if entry is None:
                problems.append(
                    Problem(slug, "entry-unknown", f"no entry with slug {slug!r} in content/")
                )
            elif slug in published:
                notes.append(f"{slug}: already published; not sent again")
            elif not is_publishable(entry):
                problems.append(
                    Problem(
                        entry.display,
                        "entry-not-approved",
                        f"status is {entry.status}; approve it with bulletin "
                        f"approve {entry.display} --by NAME",
                    )
                )
            elif entry.publish_at and entry.publish_at > now:
                notes.append(
                    f"{slug}: publish_at {entry.publish_at.isoformat()} is "
                    "in the future; not sent yet"
                )
            else:
                chosen.append(entry)
    else:
        approved = [e for e in entries if is_publishable(e)]
        waiting = [e for e in approved if e.publish_at and e.publish_at > now]
        chosen = [e for e in approved if e.slug not in published and e not in waiting]
        if not chosen:
            done = sum(e.slug in published for e in approved)
            notes.append(
                f"{len(entries)} entries, {len(approved)} approved, {done} already published"
                + (f", {len(waiting)} waiting for their publish_at" if waiting else "")
            )
    chosen.sort(key=lambda e: (e.date, e.slug), reverse=True)
    return chosen, problems, notes


def plan(
    config: Config,
    engine: sa.Engine,
    slugs: Sequence[str] = (),
    now: dt.datetime | None = None,
    *,
    record: bool = True,
) -> Plan:
    """Validate, choose, render and check an edition; raise ContentError on any problem."""
    now = now or dt.datetime.now(dt.UTC)
    entries, problems = validate(config)
    raise_for(problems)
    by_slug = {e.slug: e for e in entries}
    with engine.connect() as db:
        open_edition = ledger.unfinished(db)
        history = [e for e in ledger.all_editions(db) if e.id != getattr(open_edition, "id", "")]
        published = ledger.published_slugs(db)
        next_id = ledger.next_edition_id(db, now.astimezone(config.site.tz).date())
    notes: list[str] = []
    if open_edition is not None:
        missing = [s for s in open_edition.slugs if s not in by_slug]
        if missing:
            raise ContentError(
                f"edition {open_edition.id} was interrupted and its entries "
                f"{', '.join(missing)} are gone from content/; restore them to finish it",
                [
                    Problem(s, "entry-missing", "entry of an unfinished edition is missing")
                    for s in missing
                ],
            )
        chosen = [by_slug[s] for s in open_edition.slugs]
        edition = Plan(open_edition.id, chosen, open_edition.created_at, resumed=True)
        notes.append(f"resuming edition {open_edition.id}, interrupted before it finished")
    else:
        chosen, slug_problems, notes = choose(entries, published, slugs, now)
        raise_for(slug_problems)
        edition = Plan(next_id if chosen else None, chosen, now)
    edition.notes = notes
    shown = [h for h in history if h.status == "done"]
    archive = [
        EditionInfo(h.id, h.created_at, tuple(by_slug[s] for s in h.slugs if s in by_slug))
        for h in shown
    ]
    if edition.edition_id and record:
        archive.insert(
            0, EditionInfo(edition.edition_id, edition.published, tuple(edition.entries))
        )
    render(config, edition, archive)
    return edition


def render(config: Config, edition: Plan, archive: Sequence[EditionInfo]) -> None:
    """Render the edition's emails and the whole public/ site, then check every output."""
    renderer = Renderer(config)
    outputs: list[Output] = []
    if edition.edition_id:
        for key, mailing_list in config.lists.items():
            wanted = matching(mailing_list, edition.entries)
            if wanted:
                email = renderer.email(wanted, edition.edition_id, mailing_list.name)
                edition.emails[key] = (email, wanted)
                outputs += _email_outputs(f"list {key}", email, wanted)
        for key, partner in config.partners.items():
            wanted = matching(partner, edition.entries)
            if not wanted:
                continue  # nothing concerns the partner: it gets nothing, not an empty edition
            edition.partners[key] = wanted
            if partner.email:
                email = renderer.email(wanted, edition.edition_id, partner.name)
                edition.partner_emails[key] = email
                outputs += _email_outputs(f"partner {key}", email, wanted)
    feed_entries = list({e.slug: e for info in archive for e in info.entries}.values())
    files = edition.files
    files["index.html"] = renderer.archive(archive).encode()
    outputs.append(_page_output(config, "public/index.html", files["index.html"], feed_entries, 0))
    files["feed.xml"] = rss(config, feed_entries)
    files["atom.xml"] = atom(config, feed_entries)
    outputs += feed_outputs("public/feed.xml", files["feed.xml"], feed_entries)
    outputs += feed_outputs("public/atom.xml", files["atom.xml"], feed_entries)
    for name, xml in filtered_feeds(config, feed_entries).items():
        files[name] = xml
        outputs += feed_outputs(f"public/{name}", xml, feed_entries)
    for info in archive:
        name = f"{info.id}/index.html"
        files[name] = renderer.edition_page(info).encode()
        outputs.append(_page_output(config, f"public/{name}", files[name], info.entries, 1))
    for entry in feed_entries:
        name = f"entries/{entry.slug}/index.html"
        files[name] = renderer.entry_page(entry).encode()
        outputs.append(_page_output(config, f"public/{name}", files[name], (entry,), 2))
    raise_for(check_outputs(config, outputs))


def _email_outputs(who: str, email: RenderedEmail, entries: list[Entry]) -> list[Output]:
    cids = {(n.rule, n.language): f"cid:{n.cid}" for n in email.notices}
    return [
        Output(
            f"the email to {who} (HTML part)",
            True,
            email.html,
            tuple(entries),
            cids,
            "templates/email.mjml.j2",
        ),
        Output(
            f"the email to {who} (text part)",
            False,
            email.text,
            tuple(entries),
            None,
            "templates/email.txt.j2",
        ),
    ]


def _page_output(config: Config, name: str, html: bytes, entries, depth: int) -> Output:
    srcs = {
        (e.funding, e.language): "../" * depth + config.funding[e.funding].emblem for e in entries
    }
    return Output(name, True, html.decode(), tuple(entries), srcs, "templates/base.html.j2")


def check_entries(config: Config, paths: Sequence = ()) -> tuple[list[Entry], list[Problem]]:
    """`bulletin check`: every problem in the entries and in what they render to."""
    entries, problems = validate(config, paths)
    bad = {p.path for p in problems}
    candidates = [e for e in entries if e.status != "withdrawn" and e.display not in bad]
    if candidates:
        preview = Plan("check", candidates, dt.datetime.now(dt.UTC))
        info = EditionInfo("check", preview.published, tuple(candidates))
        try:
            render(config, preview, [info])
        except ContentError as exc:
            problems += exc.problems
    return entries, problems


def recipients(
    db: sa.Connection, config: Config, edition: Plan, *, subscribers_too: bool = True
) -> list[tuple[str, str, str]]:
    """Everyone the edition goes to, frozen when it is recorded: (channel, target, address).

    Without `subscribers_too`, the subscriber lists are left out: `record` copies them
    inside the database.
    """
    found: list[tuple[str, str, str]] = []
    suppressed = set(db.scalars(sa.select(suppressions.c.email)))
    for key in edition.emails:
        mailing_list = config.lists[key]
        if mailing_list.external:
            addresses = [str(mailing_list.address)]
        elif subscribers_too:
            addresses = [s.email for s in active(db, key)]
        else:
            continue
        found += [("email", key, a) for a in addresses if a.lower() not in suppressed]
    for key in edition.partners:
        partner = config.partners[key]
        found.append(("partner", key, partner.webhook or partner.email or key))
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
        for key in edition.emails:
            if not config.lists[key].external:
                ledger.freeze_subscribers(db, edition.edition_id, key, edition.published)
        return ledger.count_pending(db, edition.edition_id)


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
        ledger.batch_lock(engine, config, batch) if batch else ledger.delivery_lock(engine, config)
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

    The caller holds the edition's delivery lock (`ledger.delivery_lock`): partners in
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


def finish(engine: sa.Engine, edition: Plan) -> dict[tuple[str, str, str], int]:
    """Close the edition once nothing is pending; the ledger's counts for the report."""
    assert edition.edition_id
    with engine.begin() as db:
        tally = ledger.counts(db, edition.edition_id)
        if not any(status in ("pending", "sending") for (_, _, status) in tally):
            ledger.finish(db, edition.edition_id, dt.datetime.now(dt.UTC))
    return tally


def failures(engine: sa.Engine, edition: Plan) -> list[tuple[str, str, str]]:
    """What failed for good in the edition, and why: for the report."""
    assert edition.edition_id
    with engine.connect() as db:
        return ledger.failures(db, edition.edition_id)


def due(
    entries: Sequence[Entry], published: set[str], now: dt.datetime
) -> tuple[list[str], list[str]]:
    """The timed entries to send now: approved, not yet published, `publish_at` passed and
    `send_not_after` not; and a note for each approved one whose window closed unsent."""
    chosen: list[str] = []
    notes: list[str] = []
    for entry in entries:
        if entry.publish_at is None or entry.slug in published or not is_publishable(entry):
            continue
        if entry.publish_at > now:
            continue
        if entry.send_not_after and entry.send_not_after <= now:
            notes.append(
                f"{entry.slug}: send_not_after {entry.send_not_after.isoformat()} passed "
                "before it was sent; it is left for a publish you start yourself"
            )
            continue
        chosen.append(entry.slug)
    return chosen, notes


def due_slugs(config: Config, engine: sa.Engine, now: dt.datetime) -> tuple[list[str], list[str]]:
    """`due` for the site's entries and ledger."""
    entries, _ = validate(config)
    with engine.connect() as db:
        published = ledger.published_slugs(db)
    return due(entries, published, now)


CHANNELS = ("email", "partners")


def restrict(edition: Plan, channels: Sequence[str]) -> None:
    """Keep only the channels asked for: the others get nothing from this edition."""
    if "email" not in channels:
        edition.emails.clear()
    if "partners" not in channels:
        edition.partners.clear()


def email_previews(edition: Plan) -> dict[str, bytes]:
    """Each list's email as files for public/preview/<list>/, the emblem linked, not attached."""
    files: dict[str, bytes] = {}
    for key, (email, _) in edition.emails.items():
        html = email.html
        for notice in email.notices:
            html = html.replace(f"cid:{notice.cid}", "../../" + notice.emblem)
        files[f"preview/{key}/email.html"] = html.encode()
        files[f"preview/{key}/email.txt"] = email.text.encode()
    return files
