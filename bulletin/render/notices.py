"""Decides which funding notice (EU emblem, statement, disclaimer) each output carries, and
how it is shown: in templates, in a feed item, in a partner's payload, in an email.

Entries carry the notice of their funding rule in their language; an output with no entry
(an empty archive, the web service's pages and emails) carries the site's default rule in
the reader's language, or the site's own where that has no text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from bulletin.config.model import Config
from bulletin.content.entries import Entry

#: What the text part of an email shows where the HTML part shows the emblem.
EMBLEM_LABEL = "EU"


@dataclass(frozen=True)
class Notice:
    """A funding acknowledgement that an output must carry: emblem, statement, disclaimer."""

    rule: str
    language: str
    statement: str
    disclaimer: str
    emblem: str  # path of the emblem image, relative to the site

    @property
    def cid(self) -> str:
        """The Content-ID under which emails carry the emblem image."""
        return f"emblem-{self.rule}@bulletin"

    @property
    def email_src(self) -> str:
        """The emblem's address in an email's HTML: the inline image part."""
        return f"cid:{self.cid}"

    def page_src(self, root: str) -> str:
        """The emblem's address on a page `root` (`../`, …) below public/."""
        return root + self.emblem

    def url(self, config: Config) -> str:
        """The emblem's absolute address, for feeds and partners."""
        return config.site.url + self.emblem

    def values(self, emblem_src: str) -> dict[str, str]:
        """What templates see of the notice, its emblem shown from `emblem_src`."""
        return {
            "rule": self.rule,
            "language": self.language,
            "statement": self.statement,
            "disclaimer": self.disclaimer,
            "emblem": self.emblem,
            "cid": self.cid,
            "emblem_src": emblem_src,
            "emblem_label": EMBLEM_LABEL,
        }


def _notice(config: Config, rule: str, language: str) -> Notice | None:
    texts = config.funding_text(rule, language)
    if texts is None:
        return None
    emblem = config.funding[rule].emblem
    return Notice(rule, language, texts.statement.strip(), texts.disclaimer.strip(), emblem)


def notices_for(config: Config, entries: Sequence[Entry]) -> list[Notice]:
    """The distinct funding notices that `entries` need, in order of first appearance."""
    found: dict[tuple[str, str], Notice] = {}
    for entry in entries:
        key = (entry.funding, entry.language)
        if key not in found:
            notice = _notice(config, *key)
            if notice is not None:
                found[key] = notice
    return list(found.values())


def site_notices(config: Config, language: str | None = None) -> list[Notice]:
    """The notice of the site's default funding rule in `language`, or in the site's own
    language where that has no text: for what shows no entry."""
    rule = config.site.default_funding
    funding = config.funding.get(rule)
    if funding is None:
        return []
    shown = language if language in funding.text else config.site.language
    notice = _notice(config, rule, shown)
    return [] if notice is None else [notice]


def page_notices(config: Config, entries: Sequence[Entry]) -> list[Notice]:
    """The notices a page of `entries` carries: theirs, or the site's when they need none."""
    return notices_for(config, entries) or site_notices(config)


def email_values(notices: Sequence[Notice]) -> list[dict[str, str]]:
    """The notices as an email's templates show them: the emblem as an inline image."""
    return [n.values(n.email_src) for n in notices]


def page_values(notices: Sequence[Notice], root: str) -> list[dict[str, str]]:
    """The notices as a page `root` below public/ shows them."""
    return [n.values(n.page_src(root)) for n in notices]


def feed_html(config: Config, notice: Notice) -> str:
    """The notice as it ends a feed item's HTML content."""
    return (
        f'<p class="funding" lang="{notice.language}"><img src="{escape(notice.url(config))}" '
        f'alt="{escape(notice.statement)}" width="72" height="48"> '
        f"<strong>{escape(notice.statement)}</strong></p>\n"
        f'<p class="funding-disclaimer" lang="{notice.language}">{escape(notice.disclaimer)}</p>'
    )
