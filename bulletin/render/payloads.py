"""Decides which entries concern each partner or list, and builds what a partner is sent."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from bulletin.config.model import Config, MailingList, Partner
from bulletin.content.entries import Entry
from bulletin.content.markup import html_to_text
from bulletin.render.notices import notices_for
from bulletin.render.renderer import edition_url, entry_url

#: The versioned JSON Schemas of the events partners receive, shipped in the package.
SCHEMAS = {"edition.published": "edition.published.v1.json", "ping": "ping.v1.json"}


def matching(audience: MailingList | Partner, entries: Sequence[Entry]) -> list[Entry]:
    """The entries an audience asked for with its `languages` and `tags` filters."""
    return [
        e
        for e in entries
        if (not audience.languages or e.language in audience.languages)
        and (not audience.tags or set(audience.tags) & set(e.tags))
    ]


def webhook_id(site_url: str, edition_id: str, partner: str) -> str:
    """The `webhook-id` of an edition for a partner: the same on every attempt, in any run,
    so that the partner can recognise a repeat."""
    digest = hashlib.sha256(f"{site_url}\n{edition_id}\n{partner}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def schema(event_type: str = "edition.published") -> dict[str, Any]:
    """The JSON Schema of an event's body, as partners get it from docs/partners.md."""
    text = resources.files("bulletin").joinpath("schemas", SCHEMAS[event_type]).read_text("utf-8")
    found: dict[str, Any] = json.loads(text)
    return found


def _site(config: Config) -> dict[str, str]:
    return {"title": config.site.title, "url": config.site.url, "language": config.site.language}


def _encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, indent=2).encode("utf-8")


def payload(
    config: Config,
    edition_id: str,
    entries: Sequence[Entry],
    published: dt.datetime,
    partner: str = "",
) -> bytes:
    """The `edition.published` event for a partner, as JSON bytes (schema v1).

    The same edition, partner and entries always give the same bytes, so a retry sends
    exactly what the first attempt did.
    """
    items = []
    for entry in entries:
        notice = notices_for(config, [entry])[0]
        items.append(
            {
                "slug": entry.slug,
                "title": entry.title,
                "date": entry.date.isoformat(),
                "end_date": entry.end_date.isoformat() if entry.end_date else None,
                "location": entry.location or None,
                "language": entry.language,
                "tags": list(entry.tags),
                "summary": entry.summary or None,
                "published_at": entry.published.isoformat(),
                "permalink": entry_url(config, entry.slug),
                "html": entry.html,
                "text": html_to_text(entry.html),
                "funding": {
                    "rule": notice.rule,
                    "statement": notice.statement,
                    "disclaimer": notice.disclaimer,
                    "emblem_url": notice.url(config),
                },
            }
        )
    event = {
        "type": "edition.published",
        "timestamp": published.astimezone(dt.UTC).isoformat(),
        "data": {
            "schema": SCHEMAS["edition.published"].removesuffix(".json"),
            "edition": edition_id,
            "url": edition_url(config, edition_id),
            "site": _site(config),
            "partner": partner,
            "entries": items,
        },
    }
    return _encode(event)


def ping(config: Config, partner: str, now: dt.datetime) -> bytes:
    """The `ping` event of `bulletin partners test`: signed like an edition, carrying none."""
    event = {
        "type": "ping",
        "timestamp": now.isoformat(),
        "data": {
            "schema": SCHEMAS["ping"].removesuffix(".json"),
            "site": _site(config),
            "partner": partner,
        },
    }
    return _encode(event)
