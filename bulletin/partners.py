"""Decides which entries concern each partner or list, and builds a partner's payload."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bulletin.bodies import html_to_text
from bulletin.config import Config, MailingList, Partner
from bulletin.entries import Entry
from bulletin.render import edition_url, entry_url, notices_for


def matching(audience: MailingList | Partner, entries: Sequence[Entry]) -> list[Entry]:
    """The entries an audience asked for with its `languages` and `tags` filters."""
    return [
        e
        for e in entries
        if (not audience.languages or e.language in audience.languages)
        and (not audience.tags or set(audience.tags) & set(e.tags))
    ]


def payload(config: Config, edition_id: str, entries: Sequence[Entry]) -> bytes:
    """The `edition.published` event for a partner, as JSON bytes."""
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
                "html": entry.html,
                "text": html_to_text(entry.html),
                "url": entry_url(config, entry.slug),
                "funding": {
                    "rule": notice.rule,
                    "statement": notice.statement,
                    "disclaimer": notice.disclaimer,
                    "emblem": config.site.url + notice.emblem,
                },
            }
        )
    event = {
        "type": "edition.published",
        "data": {
            "edition": edition_id,
            "site": {"title": config.site.title, "url": config.site.url},
            "url": edition_url(config, edition_id),
            "entries": items,
        },
    }
    return json.dumps(event, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8")
