"""Builds the RSS 2.0 and Atom 1.0 feeds of published entries, deterministically, with feedgen.

Every feed links the other formats of its folder (`rel="alternate"`: RSS, Atom and the JSON
Feed of `render.jsonfeed`) and, with `[feeds] websub_hub`, the WebSub hub (`rel="hub"`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Sequence
from html import escape

from feedgen.feed import FeedGenerator
from lxml import etree

from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.content.markup import html_to_text
from bulletin.render.notices import feed_html, notices_for
from bulletin.render.renderer import entry_url
from bulletin.render.words import date_range

#: The `updated` of a feed with no entries yet: a fixed time keeps rebuilds identical.
EMPTY_FEED_UPDATED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: Each feed's file name and media type; every feed links the others of its folder.
FEED_FILES = {
    "feed.xml": "application/rss+xml",
    "atom.xml": "application/atom+xml",
    "feed.json": "application/feed+json",
}
ATOM_NS = "http://www.w3.org/2005/Atom"


def item_html(config: Config, entry: Entry) -> str:
    """An entry's full content as it stands in a feed item, funding notice included."""
    when = date_range(entry.date, entry.end_date, entry.language)
    meta = escape(when + (f" · {entry.location}" if entry.location else ""))
    notices = "\n".join(feed_html(config, n) for n in notices_for(config, [entry]))
    return f"<p><em>{meta}</em></p>\n{entry.html}\n{notices}"


def item_summary(config: Config, entry: Entry) -> str:
    """The plain-text description of an item: summary, statement and disclaimer."""
    parts = [entry.summary or html_to_text(entry.html).split("\n\n")[0].strip()]
    for notice in notices_for(config, [entry]):
        parts += [notice.statement, notice.disclaimer]
    return "\n\n".join(parts)


class FeedItems:
    """Each entry's item content and description, made once however many feeds carry it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._html: dict[str, str] = {}
        self._summary: dict[str, str] = {}

    def html(self, entry: Entry) -> str:
        if entry.slug not in self._html:
            self._html[entry.slug] = item_html(self.config, entry)
        return self._html[entry.slug]

    def summary(self, entry: Entry) -> str:
        if entry.slug not in self._summary:
            self._summary[entry.slug] = item_summary(self.config, entry)
        return self._summary[entry.slug]


def _generator(
    config: Config,
    entries: Sequence[Entry],
    self_url: str,
    items: FeedItems,
    *,
    folder: str = "",
    title: str = "",
    language: str = "",
) -> FeedGenerator:
    site = config.site
    feed = FeedGenerator()
    # A filtered feed is its own feed: its id is its folder's URL, not the site's.
    feed.id(site.url + folder)
    feed.title(f"{site.title}: {title}" if title else site.title)
    feed.author({"name": site.title, "email": config.sender.address})
    feed.link(href=self_url, rel="self")
    for link in _links(config, self_url):
        feed.link(**link)
    feed.link(href=site.url, rel="alternate")  # last: feedgen takes RSS's <link> from it
    feed.language(language or site.language)
    feed.description(f"News and events from {site.title}" + (f" ({title})" if title else ""))
    feed.generator("bulletin", uri="https://pypi.org/project/bulletin/")
    ordered = newest(config, entries)
    feed.updated(ordered[0].published if ordered else EMPTY_FEED_UPDATED)
    for entry in ordered:
        item = feed.add_entry(order="append")
        url = entry_url(config, entry.slug)
        item.id(url)
        item.guid(url, permalink=True)
        item.title(entry.title)
        item.link(href=url, rel="alternate")
        item.published(entry.published)
        item.updated(entry.published)
        item.description(items.summary(entry))
        item.content(items.html(entry), type="CDATA")
        for tag in entry.tags:
            item.category(term=tag)
    return feed


def rss(
    config: Config,
    entries: Sequence[Entry],
    folder: str = "",
    items: FeedItems | None = None,
    **names: str,
) -> bytes:
    """public/feed.xml (or `folder`/feed.xml): RSS 2.0, newest first."""
    url = config.site.url + folder + "feed.xml"
    feed = _generator(config, entries, url, items or FeedItems(config), folder=folder, **names)
    rss: bytes = feed.rss_str(pretty=True)
    return _with_atom_links(rss, _links(config, url))


def atom(
    config: Config,
    entries: Sequence[Entry],
    folder: str = "",
    items: FeedItems | None = None,
    **names: str,
) -> bytes:
    """public/atom.xml (or `folder`/atom.xml): Atom 1.0, newest first."""
    url = config.site.url + folder + "atom.xml"
    items = items or FeedItems(config)
    feed = _generator(config, entries, url, items, folder=folder, **names)
    by_url = {entry_url(config, e.slug): e for e in entries}
    for item in feed.entry():
        # Atom carries HTML content as escaped text, not CDATA.
        item.content(items.html(by_url[item.id()]), type="html")
    atom: bytes = feed.atom_str(pretty=True)
    return atom


def json_feed(
    config: Config,
    entries: Sequence[Entry],
    folder: str = "",
    items: FeedItems | None = None,
    *,
    title: str = "",
    language: str = "",
) -> bytes:
    """public/feed.json (or `folder`/feed.json): JSON Feed 1.1, the same items, ids and
    content as the RSS and Atom feeds of the folder, newest first."""
    site = config.site
    items = items or FeedItems(config)
    url = site.url + folder + "feed.json"
    feed: dict[str, object] = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{site.title}: {title}" if title else site.title,
        "home_page_url": site.url,
        "feed_url": url,
        "description": f"News and events from {site.title}" + (f" ({title})" if title else ""),
        "language": language or site.language,
        "authors": [{"name": site.title, "url": site.url}],
    }
    if config.feeds.websub_hub:
        feed["hubs"] = [{"type": "WebSub", "url": config.feeds.websub_hub}]
    ordered = newest(config, entries)
    feed["items"] = [
        {
            "id": entry_url(config, entry.slug),
            "url": entry_url(config, entry.slug),
            "title": entry.title,
            "content_html": items.html(entry),
            "summary": items.summary(entry),
            "date_published": entry.published.isoformat(),
            "date_modified": entry.published.isoformat(),
            "language": entry.language,
            **({"tags": list(entry.tags)} if entry.tags else {}),
        }
        for entry in ordered
    ]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode()


def _links(config: Config, self_url: str) -> list[dict[str, str]]:
    """The WebSub hub (with `[feeds] websub_hub`) and the folder's other feed formats."""
    folder = self_url.rpartition("/")[0] + "/"
    links = [{"href": config.feeds.websub_hub, "rel": "hub"}] if config.feeds.websub_hub else []
    links += [
        {"href": folder + name, "rel": "alternate", "type": kind}
        for name, kind in FEED_FILES.items()
        if folder + name != self_url
    ]
    return links


def _with_atom_links(rss: bytes, links: list[dict[str, str]]) -> bytes:
    """RSS with `atom:link`s after its self link: feedgen writes only the self link in RSS."""
    if not links:
        return rss
    parser = etree.XMLParser(remove_blank_text=True, strip_cdata=False, resolve_entities=False)
    root = etree.fromstring(rss, parser)
    channel = root.find("channel")
    assert channel is not None  # feedgen always writes one
    anchor = channel.find(f"{{{ATOM_NS}}}link")
    position = list(channel).index(anchor) + 1 if anchor is not None else len(channel)
    for offset, link in enumerate(links):
        element = etree.Element(f"{{{ATOM_NS}}}link", nsmap={"atom": ATOM_NS})
        for name in ("href", "rel", "type"):
            if name in link:
                element.set(name, link[name])
        channel.insert(position + offset, element)
    out: bytes = etree.tostring(root, pretty_print=True, encoding="UTF-8", xml_declaration=True)
    return out


@functools.lru_cache(maxsize=1024)  # a site has a few tags, carried by thousands of entries
@functools.lru_cache(maxsize=4096)  # asked for each tag of each entry of the archive
def tag_folder(tag: str) -> str:
    """The folder of a tag's feeds: `tags/<tag>/`, lower case, safe in a URL and a path."""
    slug = re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")
    return f"tags/{slug or 'tag'}/"


def newest(config: Config, entries: Sequence[Entry]) -> list[Entry]:
    """The entries a feed carries: the newest `[feeds] items` (all of them with 0)."""
    ordered = sorted(entries, key=_published, reverse=True)
    return ordered[: config.feeds.items] if config.feeds.items else ordered


def _published(entry: Entry) -> tuple[dt.datetime, str]:
    return entry.published, entry.slug


def feed_groups(
    config: Config, entries: Sequence[Entry]
) -> dict[str, tuple[dict[str, str], list[Entry]]]:
    """Each feed folder (relative to public/) with its names and its entries: the site's
    feeds (`""`), and the ones partners and readers follow for one tag (`tags/<tag>/`) or
    one language (`<language>/`). An entry is taken once per slug (the last one given)."""
    by_slug = {entry.slug: entry for entry in entries}
    groups: dict[str, tuple[dict[str, str], list[str]]] = {"": ({}, list(by_slug))}
    for slug, entry in by_slug.items():
        for tag in entry.tags:
            groups.setdefault(tag_folder(tag), ({"title": tag}, []))[1].append(slug)
        names = {"title": entry.language, "language": entry.language}
        groups.setdefault(f"{entry.language}/", (names, []))[1].append(slug)
    # The entries in `newest` order, once: each group's are then its slugs sorted by rank.
    ranked = sorted(by_slug.values(), key=_published, reverse=True)
    rank = {entry.slug: place for place, entry in enumerate(ranked)}
    limit = config.feeds.items or None

    def carried(slugs: list[str]) -> list[Entry]:
        return [by_slug[s] for s in sorted(dict.fromkeys(slugs), key=rank.__getitem__)[:limit]]

    return {folder: (names, carried(slugs)) for folder, (names, slugs) in sorted(groups.items())}
