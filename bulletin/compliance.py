"""Checks every rendered output for the EU emblem, funding statement and disclaimer.

The check reads what readers will get — the email's HTML and text parts, each feed item,
each web page — not the entries' source, so a custom template that drops the notice fails.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.content.markup import html_to_text, normalise_space
from bulletin.errors import Problem
from bulletin.htmlscan import Page
from bulletin.render.notices import Notice, notices_for
from bulletin.vevents import unchecked, vevents

# Funding wordings in circulation that a site may not have configured: a body that
# carries one of these instead of the configured text has an outdated or foreign copy.
KNOWN_WORDINGS = (
    "This project is funded by the European Union.",
    "This project is co-funded by the European Union.",
    "Funded by the European Union.",
    "Co-funded by the European Union.",
    "Views and opinions expressed are however those of the author(s) only and do not "
    "necessarily reflect those of the European Union or the granting authority. Neither the "
    "European Union nor the granting authority can be held responsible for them.",
    "This publication was produced with the financial support of the European Union. Its "
    "contents are the sole responsibility of the author and do not necessarily reflect the "
    "views of the European Union.",
    "The European Commission's support for the production of this publication does not "
    "constitute an endorsement of the contents, which reflect the views only of the authors, "
    "and the Commission cannot be held responsible for any use which may be made of the "
    "information contained therein.",
)
NEAR_MISS_RATIO = 0.8
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+")
RSS_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
ATOM = "{http://www.w3.org/2005/Atom}"


@dataclass(frozen=True)
class Output:
    """A rendered output and the entries it carries."""

    name: str  # how users know it: "public/feed.xml", "email to news-en (HTML part)"
    html: bool
    content: str
    entries: tuple[Entry, ...]
    #: where the emblem must come from, per (rule, language); None: no emblem required
    emblem_src: dict[tuple[str, str], str] | None = field(default=None, hash=False)
    template: str = ""
    email: bool = False  # a part of an email (the accessibility gate pairs HTML and text)


def check_outputs(
    config: Config, outputs: Iterable[Output], pages: Mapping[str, Page] | None = None
) -> list[Problem]:
    """Every missing or misplaced funding element, per entry and output. `pages`: the HTML
    outputs as already read, by their content (see accessibility.check_accessibility);
    any other is read here."""
    problems: list[Problem] = []
    for output in outputs:
        page = None
        if output.html:
            page = pages.get(output.content) if pages is not None else None
            if page is None:
                page = read_page(output.content)
        problems.extend(_check_output(config, output, page))
    return problems


def read_page(html: str) -> Page:
    """What a reader sees of an HTML output: its images and visible text. The pass is the
    accessibility gate's, which reads the same while it checks an output."""
    from bulletin.accessibility.scan import walker as fresh_walker

    walker = fresh_walker()
    walker.feed(html)
    return walker.page()


def _check_output(config: Config, output: Output, page: Page | None) -> list[Problem]:
    text = page.text if page is not None else normalise_space(output.content)
    hint = f" (is it missing from {output.template}?)" if output.template else ""
    problems = []
    for notice in notices_for(config, output.entries):
        affected = [e for e in output.entries if (e.funding, e.language) == _key(notice)]

        def report(
            code: str, what: str, notice: Notice = notice, affected: list[Entry] = affected
        ) -> None:
            for entry in affected:
                problems.append(
                    Problem(
                        entry.display,
                        code,
                        f"{output.name} lacks {what} for {notice.rule.upper()} funding in "
                        f"{notice.language!r}{hint}; nothing is published without it",
                    )
                )

        statement = _normalised(notice.statement)
        if statement not in text:
            report("funding-statement-missing", "the funding statement")
        if _normalised(notice.disclaimer) not in text:
            report("funding-disclaimer-missing", "the disclaimer")
        if page is not None and output.emblem_src is not None:
            src = output.emblem_src.get(_key(notice))
            emblems = [img for img in page.images if img.src == src]
            if not emblems:
                report("funding-emblem-missing", "the EU emblem")
            elif not any(normalise_space(img.alt) == statement for img in emblems):
                report("funding-emblem-alt", "an emblem whose alt text is the statement")
            elif not any(img.following.startswith(statement) for img in emblems):
                report("funding-emblem-apart", "the statement right next to the emblem")
    return problems


@functools.lru_cache(maxsize=256)
def _normalised(text: str) -> str:
    """A funding text, white space collapsed: every output is checked for the same few."""
    return normalise_space(text)


def _key(notice: Notice) -> tuple[str, str]:
    return (notice.rule, notice.language)


def feed_outputs(name: str, xml: bytes, entries: Sequence[Entry]) -> list[Output]:
    """One output per feed item (RSS or Atom), each carrying the entry it is about."""
    by_url = {e.slug: e for e in entries}
    root = ET.fromstring(xml)  # noqa: S314 -- our own feed, just built
    outputs = []
    items = root.iter("item") if root.tag == "rss" else root.iter(ATOM + "entry")
    for item in items:
        if root.tag == "rss":
            url = item.findtext("guid") or ""
            parts = [item.findtext("description") or "", item.findtext(RSS_CONTENT) or ""]
            texts = [parts[0], html_to_text(parts[1])]
            labels = ["description", "content:encoded"]
        else:
            url = item.findtext(ATOM + "id") or ""
            texts = [html_to_text(item.findtext(ATOM + "content") or "")]
            labels = ["content"]
        slug = url.rstrip("/").rpartition("/")[2]
        entry = by_url.get(slug)
        if entry is None:
            continue
        for label, text in zip(labels, texts, strict=True):
            outputs.append(Output(f"{name} item {slug} ({label})", False, text, (entry,)))
    return outputs


def json_feed_outputs(name: str, data: bytes, entries: Sequence[Entry]) -> list[Output]:
    """One output per JSON Feed item (its summary and its content), as `feed_outputs`."""
    by_url = {e.slug: e for e in entries}
    outputs = []
    for item in json.loads(data)["items"]:
        entry = by_url.get(str(item["id"]).rstrip("/").rpartition("/")[2])
        if entry is None:
            continue
        texts = {"summary": item.get("summary", ""), "content_html": item.get("content_html", "")}
        texts["content_html"] = html_to_text(texts["content_html"])
        for label, text in texts.items():
            outputs.append(Output(f"{name} item {entry.slug} ({label})", False, text, (entry,)))
    return outputs


def calendar_outputs(
    name: str,
    ics: bytes,
    entries: Sequence[Entry] | Mapping[str, Entry],
    checked: Collection[bytes] = (),
) -> list[Output]:
    """One output per calendar event: its DESCRIPTION, as a calendar program shows it.
    `entries`: those it may carry, or a mapping of them by slug. `checked`: VEVENTs that
    passed as they are (in the event's own file): the same bytes are not read again."""
    by_slug = entries if isinstance(entries, Mapping) else {e.slug: e for e in entries}
    outputs = []
    for event in vevents(unchecked(ics, checked) if checked else ics):
        entry = by_slug.get(event.get("UID", "").partition("@")[0])
        if entry is None:
            continue
        text = event.get("DESCRIPTION", "")
        outputs.append(Output(f"{name} event {entry.slug} (DESCRIPTION)", False, text, (entry,)))
    return outputs


def near_misses(config: Config, entries: Iterable[Entry]) -> list[Problem]:
    """Bodies that carry an altered, outdated or foreign copy of a funding text."""
    known = _known_sentences(config)
    problems = []
    for entry in entries:
        allowed = _configured_sentences(config, entry.funding)
        body = normalise_space(html_to_text(entry.html) + " " + entry.summary)
        for sentence in _sentences(body):
            if sentence in allowed:
                continue
            match = _closest(sentence, known)
            if match is not None:
                problems.append(
                    Problem(
                        entry.display,
                        "funding-near-miss",
                        f"the body contains {_clip(sentence)!r}, an altered or outdated copy "
                        f"of the funding text {_clip(match)!r}; remove it (bulletin adds the "
                        "configured statement and disclaimer itself)",
                        _line_of(entry, sentence),
                    )
                )
    return problems


def _configured_sentences(config: Config, rule: str) -> set[str]:
    funding = config.funding.get(rule)
    texts = funding.text.values() if funding else ()
    return {s for t in texts for text in (t.statement, t.disclaimer) for s in _sentences(text)}


def _known_sentences(config: Config) -> list[tuple[str, set[str]]]:
    texts = [
        t
        for f in config.funding.values()
        for x in f.text.values()
        for t in (x.statement, x.disclaimer)
    ]
    sentences = {s for text in (*texts, *KNOWN_WORDINGS) for s in _sentences(text)}
    return [(s, _words(s)) for s in sorted(sentences)]


def _sentences(text: str) -> list[str]:
    """Sentences without their final full stop, so that 'Funded by the EU' matches."""
    parts = _SENTENCE_END.split(normalise_space(text))
    return [s.rstrip(".") for s in parts if len(s) > 12]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _closest(sentence: str, known: list[tuple[str, set[str]]]) -> str | None:
    """The known funding sentence `sentence` is a near copy of, if any (the closest)."""
    words = _words(sentence)
    lowered = sentence.lower()
    best, best_ratio = None, NEAR_MISS_RATIO
    for candidate, candidate_words in known:
        # Cheap word overlap first; the sequence ratio is only for likely matches.
        if len(words & candidate_words) < 0.5 * len(candidate_words):
            continue
        if not 0.6 < len(sentence) / len(candidate) < 1.6:
            continue
        ratio = difflib.SequenceMatcher(None, lowered, candidate.lower()).ratio()
        if ratio >= best_ratio:
            best, best_ratio = candidate, ratio
    return best


def _clip(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _line_of(entry: Entry, sentence: str) -> int | None:
    probe = sentence.split()[:4]
    for number, line in enumerate(entry.body.split("\n")):
        if probe and " ".join(probe) in normalise_space(line):
            return entry.body_line + number
    return None


def unsourced_texts(config: Config) -> list[Problem]:
    """Warnings, not errors: each funding text that does not say where its wording comes
    from. The binding wording is the grant agreement's; an unsourced one may be invented."""
    return [
        Problem(
            "bulletin.toml",
            "funding-text-unsourced",
            f'[funding.{rule}.text.{language}] has no source; add source = "..." naming '
            "where the wording comes from (your grant agreement, an official translation)",
        )
        for rule, funding in config.funding.items()
        for language, text in funding.text.items()
        if not text.source.strip()
    ]
