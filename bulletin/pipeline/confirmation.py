"""What the person asked to confirm an edition sees: private previews and one page that
stands on its own.

The previews are the edition's emails (each list's and each email partner's) and its web
page, written into `public/preview/` with a marker naming the edition. `bulletin serve`
shows them only through a link signed with the site key that expires with the
confirmation's pause (`web.preview`); without one they are a 404, as before, so a static host
never publishes an edition before someone approved it.

The confirmation page (a Markdown artifact in the Prefect UI) lists per list and partner the
subject, the recipients and their languages; the entries with their approver and approval
time, each linked to its preview; what the EU-notice check checked; and the warnings.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from bulletin.config.model import Config
from bulletin.errors import ConfigError
from bulletin.pipeline.planning import EDITION_PAGE, Plan, preview_files
from bulletin.pipeline.recording import would_send
from bulletin.pipeline.variants import reader_language
from bulletin.store.subscribers import active
from bulletin.tokens import Signer, secret_key

PURPOSE = "preview"  # web.preview verifies with it


SCREENSHOTS = "preview/screenshots"


def screenshots(config: Config, edition: Plan) -> tuple[list[str], str | None]:
    """Light and dark screenshots at 375 and 1,200 px of each email preview, written into
    public/preview/screenshots/ (paths relative to public/); with the reason when there are
    none (no Chromium, or no Playwright: `pip install 'bulletin[browser]'`)."""
    try:
        from bulletin.accessibility.browser import chromium, edition_screenshots
    except ImportError:  # pragma: no cover - the browser extra is missing
        return [], "no screenshots: install bulletin[browser] for them"
    if chromium() is None:
        return [], "no screenshots: this machine has no Chromium"
    emails = {n: d for n, d in preview_files(edition).items() if n.endswith("/email.html")}
    folder = config.public_dir / SCREENSHOTS
    try:
        shots = edition_screenshots(config, emails, folder)
    except (ConfigError, ImportError, OSError) as exc:
        return [], f"no screenshots: {exc}"
    return [p.relative_to(config.public_dir).as_posix() for p in shots], None


def preview_links(
    config: Config, edition: Plan, expires: dt.datetime, shots: Sequence[str] = ()
) -> dict[str, str]:
    """The signed address of each preview, by what it shows ("news", "partner rilo",
    "edition page"), valid until `expires`."""
    assert edition.edition_id
    token = Signer(secret_key(config.state_dir)).sign_expiring(PURPOSE, expires, edition.edition_id)
    base = config.site.url
    links = {key: f"{base}preview/{key}/email.html?t={token}" for key in edition.emails}
    for key, language in _other_variants(edition):
        links[f"{key} ({language})"] = f"{base}preview/{key}/{language}/email.html?t={token}"
    links |= {
        f"partner {key}": f"{base}preview/partners/{key}/email.html?t={token}"
        for key in edition.partner_emails
    }
    if f"{edition.edition_id}/index.html" in edition.files:
        links["edition page"] = f"{base}{EDITION_PAGE}?t={token}"
    for shot in shots:  # preview/screenshots/preview-news-email-light-375.png
        what = shot.rpartition("/")[2].removesuffix(".png").removeprefix("preview-")
        links[f"screenshot {what}"] = f"{base}{shot}?t={token}"
    return links


def _other_variants(edition: Plan) -> list[tuple[str, str]]:
    """(list, language) of each variant besides the one `edition.emails` shows."""
    return [
        (key, language)
        for key, by_language in edition.variants.items()
        for language, (email, _) in by_language.items()
        if key not in edition.emails or email is not edition.emails[key][0]
    ]


@dataclass(frozen=True)
class Audience:
    """Who one list or partner is, for the confirmation page."""

    name: str
    subject: str
    recipients: int
    languages: tuple[str, ...]
    link: str


def audiences(
    config: Config, engine: sa.Engine, edition: Plan, links: Mapping[str, str]
) -> list[Audience]:
    """Each list and partner of the edition with its subject, recipients and languages."""
    counts = would_send(engine, config, edition)
    found = []
    with engine.connect() as db:
        for key, (email, _) in edition.emails.items():
            languages: tuple[str, ...]
            if config.lists[key].external:
                languages = (email.language,)
            else:
                languages = tuple(sorted({s.language or "—" for s in active(db, key)}))
            found.append(
                Audience(
                    f"list {key}", email.subject, counts.get(key, 0), languages, links.get(key, "")
                )
            )
            by_language = edition.variants.get(key, {})
            if len(by_language) > 1 and not config.lists[key].external:
                # One row per language variant: who reads it, and its own subject.
                readers = Counter(
                    reader_language(list(by_language), email.language, s.language)
                    for s in active(db, key)
                )
                for language, (variant, _) in by_language.items():
                    found.append(
                        Audience(
                            f"list {key} ({language})", variant.subject, readers[language],
                            (language,), links.get(f"{key} ({language})", links.get(key, "")),
                        )
                    )  # fmt: skip
    for key, entries in edition.partners.items():
        partner_email = edition.partner_emails.get(key)
        subject = partner_email.subject if partner_email else "(webhook: the edition as JSON)"
        languages = tuple(sorted({e.language for e in entries}))
        link = links.get(f"partner {key}", "")
        found.append(Audience(f"partner {key}", subject, counts.get(key, 0), languages, link))
    return found


def warnings(
    config: Config, edition: Plan, audiences: list[Audience], now: dt.datetime
) -> list[str]:
    """What the person confirming should know before saying yes."""
    found = []
    for entry in edition.entries:
        if entry.send_not_after and entry.send_not_after <= now:
            found.append(
                f"{entry.slug}: its send_not_after ({entry.send_not_after.isoformat()}) has "
                "passed: it goes to the web and feeds, but no email carries it"
            )
    found += [f"{a.name} has no recipients" for a in audiences if a.recipients == 0]
    found += [f"{a.name}: {problem}" for a, problem in _partner_problems(config, edition)]
    return found


def _partner_problems(config: Config, edition: Plan) -> list[tuple[Audience, str]]:
    """Partners whose webhook cannot be used as configured (a missing secret)."""
    from bulletin.config.secrets import partner_secret

    problems = []
    for key in edition.partners:
        partner = config.partners[key]
        if not partner.webhook:
            continue
        try:
            partner_secret(partner, key)
        except ConfigError as exc:
            problems.append((Audience(f"partner {key}", "", 0, (), ""), str(exc)))
    return problems


def page(
    config: Config,
    edition: Plan,
    audiences: list[Audience],
    links: Mapping[str, str],
    compliance: str,
    expires: dt.datetime,
    now: dt.datetime,
) -> str:
    """The confirmation page, in Markdown."""
    lines = [
        f"# Edition {edition.edition_id}: {len(edition.entries)} entries",
        "",
        f"Previews open through `bulletin serve` until {expires:%Y-%m-%d %H:%M} UTC, "
        "when this confirmation expires. Approve (or not) with your name below; untick an "
        "entry to leave it for a later edition.",
        "",
        "## Who gets what",
        "",
        "| list or partner | subject | recipients | languages | preview |",
        "|---|---|---|---|---|",
    ]
    for a in audiences:
        preview = f"[open]({a.link})" if a.link else "—"
        languages = ", ".join(a.languages) or "—"
        lines.append(
            f"| {a.name} | {_cell(a.subject)} | {a.recipients} | {languages} | {preview} |"
        )
    lines += [
        "",
        "## Entries",
        "",
        "| entry | language | approved by | approved at | preview |",
        "|---|---|---|---|---|",
    ]
    first_email = next(iter(links.values()), "")
    for entry in edition.entries:
        where = next((links[k] for k, (_, es) in edition.emails.items() if entry in es), "")
        link = where or first_email
        preview = f"[open]({link}#{entry.slug})" if link else "—"
        at = entry.approved_at.isoformat() if entry.approved_at else "—"
        lines.append(
            f"| {_cell(entry.title)} (`{entry.slug}`) | {entry.language} | "
            f"{_cell(entry.approved_by or '—')} | {at} | {preview} |"
        )
    if "edition page" in links:
        lines += ["", f"The edition's web page: [open]({links['edition page']})"]
    shots = [(what.removeprefix("screenshot "), link) for what, link in links.items()
             if what.startswith("screenshot ")]  # fmt: skip
    if shots:
        lines += ["", "Screenshots: " + " · ".join(f"[{what}]({link})" for what, link in shots)]
    lines += ["", "## Checks", "", f"- EU funding notice: {compliance}"]
    found = warnings(config, edition, audiences, now)
    lines += ["", "## Warnings", ""] + ([f"- {w}" for w in found] or ["None."])
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
