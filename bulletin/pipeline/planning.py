"""Chooses, renders and checks an edition before anything is recorded or sent.

Everything is validated, rendered and checked here, before the first side effect: a plan
that raises nothing is an edition every reader may receive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bulletin.compliance import Output
from bulletin.config.model import Config
from bulletin.content.entries import Entry, Listed, load_entries
from bulletin.content.translations import (
    translation_problems,
    withdraw_with_originals,
)
from bulletin.errors import ContentError, Problem, raise_for
from bulletin.pipeline.checked import Verdicts, is_publishable
from bulletin.pipeline.gates import Gates
from bulletin.pipeline.idle import Memo
from bulletin.pipeline.public import Inputs, page_languages, reader, render_public
from bulletin.pipeline.staging import Staged
from bulletin.pipeline.variants import default_language, list_variants
from bulletin.pipeline.write import SITE, PublicState
from bulletin.render.payloads import matching
from bulletin.render.renderer import EditionInfo, RenderedEmail, Renderer, edition_url
from bulletin.store.statuses import EditionStatus

if TYPE_CHECKING:
    import sqlalchemy as sa


def validate(
    config: Config, paths: Sequence[Path] = (), listed: Listed | None = None
) -> tuple[list[Entry], list[Problem]]:
    """Load the entries and find every problem: content, approval, near-miss disclaimers.
    `listed`: the site's entry files, as just listed (see `load_entries`)."""
    loaded = load_entries(config, paths, listed)
    problems = list(loaded.problems)
    problems += translation_problems(loaded.entries)
    entries = withdraw_with_originals(loaded.entries)
    verdicts = Verdicts(config)
    problems += verdicts.all(entries)
    verdicts.save()
    return entries, problems


@dataclass
class Plan:
    """What a publish will do, fully rendered and checked, before anything is sent."""

    edition_id: str | None
    entries: list[Entry]
    published: dt.datetime
    resumed: bool = False
    #: each list's email in its default language (or its first, when that one is empty)
    emails: dict[str, tuple[RenderedEmail, list[Entry]]] = field(default_factory=dict)
    #: list → language → that language's email and entries (see pipeline.variants)
    variants: dict[str, dict[str, tuple[RenderedEmail, list[Entry]]]] = field(default_factory=dict)
    partners: dict[str, list[Entry]] = field(default_factory=dict)
    partner_emails: dict[str, RenderedEmail] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    #: the digest of each public/ file's inputs (see pipeline.public), for write_public
    inputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: public/ being written as it was rendered (see pipeline.staging), for write_public
    staged: Staged | None = field(default=None, repr=False, compare=False)


def choose(
    config: Config,
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
            elif not is_publishable(config, entry):
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
        approved = [e for e in entries if is_publishable(config, e)]
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
    stage: bool = False,
) -> Plan:
    """Validate, choose, render and check an edition; raise ContentError on any problem.
    `stage`: a site without public/ has its files written as they are rendered, into a
    folder that `write_public` makes public/ (see pipeline.staging)."""
    from bulletin.store import ledger

    now = now or dt.datetime.now(dt.UTC)
    # The edition of every approved entry not yet published: none, as last time, when the
    # site is as it was then (see pipeline.idle); the files listed serve the load otherwise.
    memo = None if slugs else Memo(config, engine)
    found = memo.hit(now) if memo else None
    if found is not None:
        return Plan(None, [], now, notes=found[0], inputs=found[1])
    entries, problems = validate(config, listed=memo.listed if memo else None)
    raise_for(problems)
    by_slug = {e.slug: e for e in entries}
    with engine.connect() as db:
        open_edition = ledger.unfinished(db)
        every = ledger.all_editions(db)
        history = [e for e in every if e.id != getattr(open_edition, "id", "")]
        # ledger.published_slugs, from the rows just read: every edition's entries
        published = {slug for e in every for slug in e.slugs}
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
        chosen, slug_problems, notes = choose(config, entries, published, slugs, now)
        raise_for(slug_problems)
        edition = Plan(next_id if chosen else None, chosen, now)
    chosen_notes = list(notes)  # the gates' warnings join edition.notes
    edition.notes = notes
    shown = [h for h in history if h.status == EditionStatus.DONE]
    archive = [
        EditionInfo(h.id, h.created_at, tuple(by_slug[s] for s in h.slugs if s in by_slug))
        for h in shown
    ]
    if edition.edition_id and record:
        archive.insert(
            0, EditionInfo(edition.edition_id, edition.published, tuple(edition.entries))
        )
    staged = Staged.start(config) if stage else None
    try:
        render(config, edition, archive, incremental=True, staged=staged)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    edition.staged = staged
    if memo is not None and edition.edition_id is None:
        # Time ends the memo when the first approved entry waiting for its publish_at is due.
        times = [(e, e.publish_at) for e in entries if e.publish_at and e.publish_at > now]
        until = min(
            (t for e, t in times if e.slug not in published and is_publishable(config, e)),
            default=None,
        )
        memo.remember(chosen_notes, edition.inputs.get(SITE), until)
    return edition


def render(
    config: Config,
    edition: Plan,
    archive: Sequence[EditionInfo],
    incremental: bool = False,
    processes: int | None = None,
    staged: Staged | None = None,
) -> None:
    """Render the edition's emails and public/, then check every output. `incremental`:
    only the files of public/ whose inputs changed since it was last written. `processes`:
    how many read a large build's outputs for the gates (see pipeline.gates). `staged`:
    where public/'s files are written as they are rendered (see pipeline.staging)."""
    renderer = Renderer(config)
    outputs: list[Output] = []
    if edition.edition_id:
        for key, mailing_list in config.lists.items():
            variants = list_variants(config, mailing_list, edition.entries)
            for language, wanted in variants.items():
                web_url = edition_url(config, edition.edition_id)
                if language in page_languages(config, edition.entries):
                    web_url += f"{language}/"
                email = renderer.email(
                    wanted, edition.edition_id, mailing_list.name, language, web_url
                )
                edition.variants.setdefault(key, {})[language] = (email, wanted)
                outputs += _email_outputs(f"list {key} ({language})", email, wanted)
            if variants:
                built = edition.variants[key]
                edition.emails[key] = built.get(default_language(config, mailing_list)) or next(
                    iter(built.values())
                )
        for key, partner in config.partners.items():
            wanted = matching(partner, edition.entries)
            if not wanted:
                continue  # nothing concerns the partner: it gets nothing, not an empty edition
            edition.partners[key] = wanted
            if partner.email:
                email = renderer.email(wanted, edition.edition_id, partner.name)
                edition.partner_emails[key] = email
                outputs += _email_outputs(f"partner {key}", email, wanted)
    state = PublicState(config) if incremental else None
    inputs = Inputs(state)
    gates = Gates(config, processes)
    gates.extend(outputs)
    if staged is not None:
        edition.files = staged.files
    try:
        files, previous = edition.files, reader(config)
        render_public(config, renderer, archive, edition.published, files, inputs, previous, gates)
        edition.inputs = inputs.keys
        problems, warnings = gates.verdict()
    finally:
        gates.close()  # a rendering error (or Ctrl-C) stops the processes too
    edition.notes += warnings
    raise_for(problems)


def _email_outputs(who: str, email: RenderedEmail, entries: list[Entry]) -> list[Output]:
    cids = {(n.rule, n.language): n.email_src for n in email.notices}
    return [
        Output(
            f"the email to {who} (HTML part)",
            True,
            email.html,
            tuple(entries),
            cids,
            "templates/email.mjml.j2",
            email=True,
        ),
        Output(
            f"the email to {who} (text part)",
            False,
            email.text,
            tuple(entries),
            None,
            "templates/email.txt.j2",
            email=True,
        ),
    ]


def check_entries(
    config: Config,
    paths: Sequence[Path] = (),
    warnings: list[str] | None = None,
    files: dict[str, bytes] | None = None,
) -> tuple[list[Entry], list[Problem]]:
    """`bulletin check`: every problem in the entries and in what they render to; the
    warnings of rules the site downgraded go into `warnings`, the rendered public/ files
    and email previews (for the browser check) into `files`."""
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
        if warnings is not None:
            warnings += preview.notes
        if files is not None:
            files.update({**preview.files, **preview_files(preview)})
    return entries, problems


def due(
    config: Config, entries: Sequence[Entry], published: set[str], now: dt.datetime
) -> tuple[list[str], list[str]]:
    """The timed entries to send now: approved, not yet published, `publish_at` passed and
    `send_not_after` not; and a note for each approved one whose window closed unsent."""
    chosen: list[str] = []
    notes: list[str] = []
    for entry in entries:
        if entry.publish_at is None or entry.slug in published or not is_publishable(config, entry):
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
    from bulletin.store import ledger

    entries, _ = validate(config)
    with engine.connect() as db:
        published = ledger.published_slugs(db)
    return due(config, entries, published, now)


CHANNELS = ("email", "partners")


def restrict(edition: Plan, channels: Sequence[str]) -> None:
    """Keep only the channels asked for: the others get nothing from this edition."""
    if "email" not in channels:
        edition.emails.clear()
        edition.variants.clear()
    if "partners" not in channels:
        edition.partners.clear()


MARKER = "preview/edition.txt"  # the edition whose previews public/preview/ holds
EDITION_PAGE = "preview/edition/index.html"


def preview_files(edition: Plan) -> dict[str, bytes]:
    """The edition's previews for public/preview/, paths relative to public/: each list's
    email (`<list>/`), each email partner's (`partners/<partner>/`), the edition's web page
    (`edition/`), and the marker. Emblems are linked, not attached."""
    files: dict[str, bytes] = {}
    emails = {f"preview/{key}/": email for key, (email, _) in edition.emails.items()}
    for key, by_language in edition.variants.items():  # the other languages' variants
        shown = edition.emails[key][0] if key in edition.emails else None
        for language, (email, _) in by_language.items():
            if email is not shown:
                emails[f"preview/{key}/{language}/"] = email
    emails |= {f"preview/partners/{key}/": e for key, e in edition.partner_emails.items()}
    for folder, email in emails.items():
        root = "../" * folder.count("/")
        html = email.html
        for notice in email.notices:
            html = html.replace(notice.email_src, notice.page_src(root))
        files[folder + "email.html"] = html.encode()
        files[folder + "email.txt"] = email.text.encode()
    page = edition.files.get(f"{edition.edition_id}/index.html")
    if page is not None:  # written for public/<edition>/, one folder less deep
        files[EDITION_PAGE] = page.replace(b'="../', b'="../../')
    if edition.edition_id:
        files[MARKER] = edition.edition_id.encode()
    return files
