"""The fixed words of emails, pages and feeds, in the languages of the reference user."""

from __future__ import annotations

import datetime as dt

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "view_in_browser": "View this edition in your browser",
        "read_online": "Read online",
        "unsubscribe": "Unsubscribe",
        "unsubscribe_text": "You receive this because you subscribed to {list}.",
        "archive": "Archive",
        "editions": "Editions",
        "edition": "Edition",
        "feeds": "Feeds",
        "no_editions": "Nothing has been published yet.",
        "entries_in_edition": "In this edition",
    },
    "ro": {
        "view_in_browser": "Vedeți această ediție în browser",
        "read_online": "Citiți online",
        "unsubscribe": "Dezabonare",
        "unsubscribe_text": "Primiți acest mesaj pentru că v-ați abonat la {list}.",
        "archive": "Arhivă",
        "editions": "Ediții",
        "edition": "Ediția",
        "feeds": "Fluxuri",
        "no_editions": "Nu a fost publicat nimic încă.",
        "entries_in_edition": "În această ediție",
    },
    "bg": {
        "view_in_browser": "Вижте това издание в браузъра",
        "read_online": "Прочетете онлайн",
        "unsubscribe": "Отписване",
        "unsubscribe_text": "Получавате това съобщение, защото сте абонирани за {list}.",
        "archive": "Архив",
        "editions": "Издания",
        "edition": "Издание",
        "feeds": "Емисии",
        "no_editions": "Все още няма публикации.",
        "entries_in_edition": "В това издание",
    },
}

MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "ro": ("ianuarie", "februarie", "martie", "aprilie", "mai", "iunie", "iulie", "august",
           "septembrie", "octombrie", "noiembrie", "decembrie"),
    "bg": ("януари", "февруари", "март", "април", "май", "юни", "юли", "август",
           "септември", "октомври", "ноември", "декември"),
}  # fmt: skip


def labels(language: str) -> dict[str, str]:
    """The fixed words in `language`, English where a word has no translation yet."""
    return {**LABELS["en"], **LABELS.get(language, {})}


def date_range(start: dt.date, end: dt.date | None, language: str) -> str:
    """'12–13 November 2019', '30 November – 2 December 2019', in the entry's language."""
    months = MONTHS.get(language)
    if months is None:
        return start.isoformat() + (f" – {end.isoformat()}" if end and end != start else "")

    def day(d: dt.date, year: bool = True) -> str:
        text = f"{d.day} {months[d.month - 1]}"
        return f"{text} {d.year}" if year else text

    if not end or end == start:
        return day(start)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{day(end)}"
    if start.year == end.year:
        return f"{day(start, year=False)} – {day(end)}"
    return f"{day(start)} – {day(end)}"
