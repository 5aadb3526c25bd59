"""Decides the language variants of an edition for each list, and which one each reader gets.

A list has a variant per language the site publishes in (its `languages` filter narrows
them); each variant holds every item once, in the reader's language where it has a
version, else as the list's `fallback` says. A reader whose language the list lacks gets
the list's default variant: the site's language, or the first of the list's languages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from bulletin.config.model import Config, MailingList
from bulletin.content.entries import Entry
from bulletin.content.translations import variant
from bulletin.render.payloads import matching

V = TypeVar("V")


def site_languages(config: Config) -> list[str]:
    """The languages the site publishes in: its own first, then each one that has funding
    texts (an entry can only be in one of these)."""
    codes = [config.site.language]
    codes += [code for funding in config.funding.values() for code in funding.text]
    unique: dict[str, str] = {}
    for code in codes:
        unique.setdefault(code.lower(), code)
    return list(unique.values())


def list_languages(config: Config, mailing_list: MailingList) -> list[str]:
    """The languages a list has a variant in; an external list only the default one."""
    if mailing_list.external:
        return [default_language(config, mailing_list)]
    codes = site_languages(config)
    if mailing_list.languages:
        wanted = {code.lower() for code in mailing_list.languages}
        codes = [code for code in codes if code.lower() in wanted] or mailing_list.languages[:1]
    return codes


def default_language(config: Config, mailing_list: MailingList) -> str:
    """The variant of readers with no language, or one the list lacks."""
    site = config.site.language
    if not mailing_list.languages or site.lower() in {c.lower() for c in mailing_list.languages}:
        return site
    return mailing_list.languages[0]


def list_variants(
    config: Config, mailing_list: MailingList, entries: Sequence[Entry]
) -> dict[str, list[Entry]]:
    """Each language's entries for the list; a language left with none is not sent."""
    wanted = matching(mailing_list, entries)
    found = {}
    for language in list_languages(config, mailing_list):
        chosen = variant(wanted, language, mailing_list.fallback)
        if chosen:
            found[language] = chosen
    return found


def reader_language(languages: Sequence[str], default: str, reader: str) -> str:
    """The variant language for a reader of `reader` (may be "", or a code like ro-MD)."""
    by_lower = {code.lower(): code for code in languages}
    code = reader.strip().lower()
    for candidate in (code, code.split("-")[0]):
        if candidate and candidate in by_lower:
            return by_lower[candidate]
    return default


class Chooser:
    """`reader_language` for one list, remembered per reader language: the per-recipient
    hot path does one dictionary lookup."""

    def __init__(self, config: Config, mailing_list: MailingList) -> None:
        self.languages = list_languages(config, mailing_list)
        self.default = default_language(config, mailing_list)
        self._known: dict[str, str] = {}

    def __call__(self, reader: str) -> str:
        found = self._known.get(reader)
        if found is None:
            found = self._known[reader] = reader_language(self.languages, self.default, reader)
        return found
