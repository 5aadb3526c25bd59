"""Groups entries and their translations (`translation_of: SLUG`) into items, checks the
links between them, and picks each item's version for a reader's language.

An item is an original and its translations: each is a file of its own, with its own
language and approval. A translation of an original that is not at hand (not approved yet,
or already published) stands alone: it reaches only readers of its own language.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from bulletin.content.entries import Entry
from bulletin.errors import Problem

#: What a list does with an item that has no version in the reader's language.
FALLBACKS = ("original", "skip")


@dataclass(frozen=True)
class Item:
    """One piece of news in one or more languages; `original` is None for a translation
    whose original is not among the entries at hand."""

    slug: str
    original: Entry | None
    versions: dict[str, Entry]  # by language, lowercase

    def version(self, language: str, fallback: str = "original") -> Entry | None:
        """The version a reader of `language` gets, or None when they get nothing."""
        found = self.versions.get(language.lower())
        if found is not None or fallback == "skip":
            return found
        return self.original


def same_language(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def translation_problems(entries: Sequence[Entry]) -> list[Problem]:
    """Translations of unknown slugs, translations of translations, and two versions of one
    item in one language: each named on the translation's `translation_of` line."""
    by_slug = {e.slug: e for e in entries}
    problems: list[Problem] = []
    seen: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        if entry.translation_of is None:
            continue
        line = entry.line("translation_of")
        original = by_slug.get(entry.translation_of)
        if original is None:
            problems.append(
                Problem(
                    entry.display,
                    "translation-unknown",
                    f"translation_of {entry.translation_of!r}: no entry with that slug in "
                    "content/; name the original's file without .md",
                    line,
                )
            )
            continue
        if original.translation_of is not None:
            problems.append(
                Problem(
                    entry.display,
                    "translation-chain",
                    f"{original.slug} is itself a translation (of {original.translation_of}); "
                    f"write translation_of: {original.translation_of}",
                    line,
                )
            )
            continue
        if same_language(original.language, entry.language):
            problems.append(
                Problem(
                    entry.display,
                    "translation-language",
                    f"the original {original.slug} is already in {entry.language!r}; "
                    "set this translation's language",
                    line,
                )
            )
            continue
        key = (original.slug, entry.language.lower())
        other = seen.get(key)
        if other is not None:
            problems.append(
                Problem(
                    entry.display,
                    "translation-duplicate",
                    f"{other.display} already translates {original.slug} into "
                    f"{entry.language!r}; keep one of them",
                    line,
                )
            )
        else:
            seen[key] = entry
    return problems


def withdraw_with_originals(entries: Sequence[Entry]) -> list[Entry]:
    """The entries with every translation of a withdrawn original withdrawn too."""
    withdrawn = {e.slug for e in entries if e.status == "withdrawn"}
    return [
        dataclasses.replace(e, status="withdrawn")
        if e.translation_of in withdrawn and e.status != "withdrawn"
        else e
        for e in entries
    ]


def items(entries: Sequence[Entry]) -> list[Item]:
    """The entries grouped into items, in the order of each item's first entry."""
    present = {e.slug for e in entries}
    grouped: dict[str, list[Entry]] = {}
    for entry in entries:
        key = entry.translation_of if entry.translation_of in present else entry.slug
        assert key is not None
        grouped.setdefault(key, []).append(entry)
    found = []
    for slug, versions in grouped.items():
        original = next((e for e in versions if e.slug == slug and slug in present), None)
        if original is not None and original.translation_of is not None:
            original = None  # a translation standing alone is no one's fallback
        by_language = {e.language.lower(): e for e in reversed(versions)}
        if original is not None:
            by_language[original.language.lower()] = original
        found.append(Item(slug, original, by_language))
    return found


def variant(entries: Sequence[Entry], language: str, fallback: str = "original") -> list[Entry]:
    """The entries a reader of `language` gets: each item once, in their language where it
    has a version, else in its original language or (`fallback = "skip"`) not at all."""
    chosen = [item.version(language, fallback) for item in items(entries)]
    return [e for e in chosen if e is not None]
