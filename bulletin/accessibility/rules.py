"""The static accessibility rules: one pass over a rendered HTML output finds every
element that a screen reader, a magnifier or a low-vision reader would stumble on.

No browser is needed: colours come from inline styles, `bgcolor` and the output's own
<style> rules, so every `check`, `build` and `publish` runs these on every output.
"""

from __future__ import annotations

import functools
from typing import TypeAlias

from bulletin.accessibility.scan import LANG, Finding, Heading, Link, Walker, clip
from bulletin.accessibility.scan import walker as fresh_walker
from bulletin.content.markup import normalise_space
from bulletin.htmlscan import Page
from bulletin.render.i18n import shipped_languages
from bulletin.render.words import label

#: Each rule a site may name in [accessibility.warnings], and what it asks for.
RULES = {
    "lang": "a lang (and dir) on <html> and on the email's content wrapper",
    "image-alt": "an alt attribute on every image",
    "layout-table": 'role="presentation" on every table that lays out rather than holds data',
    "heading-order": "headings that go down one level at a time",
    "link-name": "link text that says where the link goes",
    "contrast": "text contrast of at least 4.5:1 (3:1 for large text)",
    "color-scheme": "a declared color-scheme, so that dark mode keeps the colours readable",
    "preview-text": "a preview text that is not the boilerplate of the first line",
    "text-part": "a text part that carries every entry and link of the HTML part",
}
#: Link texts that say nothing about where they go; repeated with different targets they
#: leave a screen reader's list of links with several identical entries.
GENERIC_WORDS = frozenset(
    {"click here", "here", "more", "read more", "link", "this", "continue", "details"}
)


@functools.cache
def _chrome_words(key: str) -> frozenset[str]:
    """A fixed word (`read_online`, `view_in_browser`) in every language bulletin ships."""
    return frozenset(label(lang, key).lower() for lang in shipped_languages())


@functools.cache
def generic_links() -> frozenset[str]:
    """Link texts that say nothing about where they go, in every shipped language."""
    return GENERIC_WORDS | _chrome_words("read_online")


#: what one pass over an HTML output finds: the findings, its web links, what the EU-notice
#: gate reads of it
Scan: TypeAlias = tuple[list[Finding], list[str], Page]


def check_html(html: str, *, email: bool = False) -> tuple[list[Finding], list[str]]:
    """Every finding in one HTML output, and the web links it has (for the text part)."""
    findings, hrefs, _ = scan_html(html, email=email)
    return findings, hrefs


def scan_html(html: str, *, email: bool = False) -> Scan:
    """`check_html`, and what the EU-notice gate reads of the output, from the same pass."""
    walker = fresh_walker()
    walker.feed(html)
    found = walker.findings
    attrs = walker.html_attrs
    if not LANG.match(attrs.get("lang", "")) or attrs["lang"] == "und":
        found.append(Finding("lang", "<html>", 'lacks a valid lang attribute (lang="en")'))
    if not attrs.get("dir"):
        found.append(Finding("lang", "<html>", 'lacks a dir attribute (dir="ltr" or "auto")'))
    if email and walker.unlabelled_text:
        found.append(
            Finding(
                "lang",
                f"the text {clip(walker.unlabelled_text)!r}",
                "is outside any element with a lang attribute; webmail drops <html>, so "
                "wrap the content in an element with lang (and dir)",
            )
        )
    if not walker.color_scheme:
        found.append(
            Finding(
                "color-scheme",
                "<head>",
                'declares no color-scheme (<meta name="color-scheme" content="light dark">)',
            )
        )
    found += _heading_order(walker.headings)
    found += _link_names(walker.links)
    if email:
        found += _preview(walker)
    hrefs = [link.href for link in walker.links if link.href.startswith("http")]
    return found, hrefs, walker.page()


def scan_batch(batch: list[tuple[str, bool]]) -> list[Scan]:
    """`scan_html` of each (HTML, whether it is an email's part) of `batch`: what a process
    of a large build's pool does (see pipeline.gates)."""
    return [scan_html(html, email=email) for html, email in batch]


def _heading_order(headings: list[Heading]) -> list[Finding]:
    found = []
    previous = 0
    for heading in headings:
        level = heading.level
        if previous and level > previous + 1:
            found.append(
                Finding(
                    "heading-order",
                    heading.element,
                    f"follows an h{previous}: headings go down one level at a time "
                    f"(use h{previous + 1})",
                )
            )
        previous = level
    return found


def _link_names(links: list[Link]) -> list[Finding]:
    found = []
    targets: dict[str, set[str]] = {}
    for link in links:
        name = normalise_space(link.label or " ".join(link.text))
        if not name:
            found.append(Finding("link-name", link.start, "has no text a screen reader can read"))
        elif not link.label:
            targets.setdefault(name.lower(), set()).add(link.href)
    generic = generic_links()
    for link in links:
        if link.label:
            continue
        text = normalise_space(" ".join(link.text)).lower()
        if text in generic and len(targets.get(text, ())) > 1:
            found.append(
                Finding(
                    "link-name",
                    f"{link.start}{clip(' '.join(link.text))}</a>",
                    "is one of several links with the same text and different targets; "
                    "say where it goes (aria-label with the entry's title)",
                )
            )
    return found


def _preview(walker: Walker) -> list[Finding]:
    preheader = [text for before, text in walker.hidden_texts if before == 0]
    first = preheader[0] if preheader else (walker.texts[0] if walker.texts else "")
    chrome = _chrome_words("view_in_browser")
    if first and first.lower() not in chrome:
        return []
    return [
        Finding(
            "preview-text",
            f"the first text {clip(first)!r}",
            "is what inboxes show as the preview; add a preview text (mj-preview) that "
            "says what the edition is about",
        )
    ]
