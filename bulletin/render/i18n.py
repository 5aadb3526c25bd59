"""Finds and compiles the gettext catalogs of bulletin's fixed words, and formats dates in a
reader's language with Babel's CLDR data.

Catalogs are `.po` files, compiled with Babel when first used: the site's own
`locales/<lang>/LC_MESSAGES/bulletin.po` first, then the one shipped in the package. The
compiled `.mo` is kept in the user's cache folder (`$XDG_CACHE_HOME/bulletin/catalogs/`),
named by the hash of the `.po` file's bytes and Babel's version, so that the next command
reads it instead of parsing the `.po` file again; an edited catalog has another name. Each
message is keyed by its context (`msgctxt`, the word's name in `words.py`) and its English
text (`msgid`): a catalog that lacks a word, or translates an older English text, shows the
English one. A language with no catalog at all gets English words and a logged warning.

Dates are written with the CLDR patterns and month names of the reader's language, taken
from Babel when a language is first used and kept in the same cache folder
(`$XDG_CACHE_HOME/bulletin/dates/`, one file per Babel version): a later command reads a few
patterns and names from there instead of importing Babel's date code and loading its locale
files. A date is formatted from them exactly as Babel's `DateTimePattern.apply` does; a
pattern with a field other than day, month and year is left to Babel itself.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gettext
import hashlib
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulletin.files import user_cache_folder, write_atomically

if TYPE_CHECKING:  # Babel loads when a catalog or a language's dates are first compiled
    from babel import Locale

LOGGER = "bulletin.i18n"  # logging loads when there is something to say

DOMAIN = "bulletin"
#: The catalogs shipped with bulletin.
PACKAGE_LOCALES = Path(__file__).resolve().parent.parent / "locales"
#: Where a site keeps catalogs of its own, relative to its folder.
SITE_LOCALES = "locales"
#: Languages written with another language's catalog and CLDR data.
ALIASES = {"cnr": "sr-Latn", "sr-latn-me": "sr-Latn", "mo": "ro"}
#: A language code that names a folder of its own (no path separators, no "..").
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
#: CLDR locales for bare codes whose CLDR default is not the one European readers expect.
_CLDR = {"en": "en_150", "cnr": "sr_Latn_ME"}


def shipped_languages() -> list[str]:
    """The languages bulletin ships a catalog for (`bulletin/locales/<lang>/`)."""
    return sorted(
        child.name
        for child in PACKAGE_LOCALES.iterdir()
        if (child / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    )


def catalog_file(folder: Path, language: str) -> Path | None:
    """The catalog of `language` under `folder`, found case-insensitively: its own, its
    alias's (cnr → sr-Latn), else its primary language's (ro-MD → ro); or None."""
    if _PLAIN.fullmatch(language):  # the usual case, found without listing the folder
        exact = folder / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if exact.is_file():
            return exact
    if not folder.is_dir():
        return None
    found = {
        child.name.lower(): path
        for child in folder.iterdir()
        if (path := child / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    }
    code = language.lower()
    for candidate in (code, ALIASES.get(code, "").lower(), code.split("-")[0]):
        if candidate in found:
            return found[candidate]
    return None


@functools.lru_cache(maxsize=128)
def _compiled(path: Path, stamp: float) -> gettext.GNUTranslations:
    """A .po file compiled to .mo by Babel: nothing to build at install. The .mo is read
    from the cache folder when an earlier command compiled the same bytes, else kept there."""
    po = path.read_bytes()
    folder = user_cache_folder("catalogs")
    name = f"{hashlib.sha256(po).hexdigest()}-{_babel_version()}.mo"
    cached = folder / name if folder else None
    if cached is not None and cached.is_file():
        # Truncated or damaged: compiled again below, and replaced.
        with contextlib.suppress(Exception):
            return gettext.GNUTranslations(io.BytesIO(cached.read_bytes()))
    mo = _compile(po)
    if cached is not None:
        # A cache folder that cannot be written: the next command compiles again.
        with contextlib.suppress(OSError):
            write_atomically(cached, mo)
    return gettext.GNUTranslations(io.BytesIO(mo))


def _compile(po: bytes) -> bytes:
    """The .mo of a .po file's bytes, without its fuzzy messages."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    catalog = read_po(io.BytesIO(po), domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    return mo.getvalue()


@functools.cache
def _babel_version() -> str:
    """Babel's version, which names what is compiled with it, read without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("babel")
    except PackageNotFoundError:  # not installed as a distribution: ask the module
        from babel import __version__

        return __version__


def _load(path: Path) -> gettext.GNUTranslations | None:
    try:
        return _compiled(path, path.stat().st_mtime)
    except (OSError, ValueError, SyntaxError) as exc:
        _warn_unreadable(path, str(exc))
        return None


@functools.lru_cache(maxsize=64)
def _warn_unreadable(path: Path, reason: str) -> None:
    import logging

    logging.getLogger(LOGGER).warning(
        "%s cannot be read (%s); it is left out: its words come from bulletin's own "
        "catalog, else in English",
        path,
        reason,
    )


@functools.lru_cache(maxsize=64)
def _warn_missing(language: str) -> None:
    import logging

    logging.getLogger(LOGGER).warning(
        "no catalog for language %r: its fixed words are shown in English; add "
        "locales/%s/LC_MESSAGES/bulletin.po to the site",
        language,
        language,
    )


def translations(language: str, site: Path | None = None) -> gettext.NullTranslations:
    """The words of `language`: the site's catalog over the package's, else English."""
    found: list[gettext.GNUTranslations] = []
    for folder in ([site / SITE_LOCALES] if site else []) + [PACKAGE_LOCALES]:
        path = catalog_file(folder, language)
        loaded = _load(path) if path else None
        if loaded is not None:
            found.append(loaded)
    if not found:
        if language.lower() != "en":
            _warn_missing(language)
        return gettext.NullTranslations()
    # Not gettext's add_fallback: the compiled catalogs are cached and shared between sites.
    return _Chained(found)


class _Chained(gettext.NullTranslations):
    """The first catalog that translates a message wins; English when none does."""

    def __init__(self, catalogs: list[gettext.GNUTranslations]) -> None:
        super().__init__()
        self._catalogs = catalogs

    def pgettext(self, context: str, message: str) -> str:
        for catalog in self._catalogs:
            found = catalog.pgettext(context, message)
            if found != message:
                return found
        return message

    def gettext(self, message: str) -> str:
        for catalog in self._catalogs:
            found = catalog.gettext(message)
            if found != message:
                return found
        return message


@functools.lru_cache(maxsize=64)
def cldr_locale(language: str) -> Locale | None:
    """Babel's locale for a language code like en, ro, sr-Latn or cnr; None if CLDR lacks it."""
    from babel import Locale, UnknownLocaleError

    code = _CLDR.get(language.lower(), language)
    parts = code.replace("-", "_").split("_")
    shaped = [parts[0].lower()] + [
        p.title() if len(p) == 4 else p.upper() if len(p) == 2 else p for p in parts[1:]
    ]
    try:
        return Locale.parse("_".join(shaped))
    except (UnknownLocaleError, ValueError):
        return None


def language_name(language: str) -> str:
    """The language as it names itself: 'Română', 'Српски'."""
    locale = cldr_locale(language)
    name = locale.get_display_name(locale) if locale else None
    return name[:1].upper() + name[1:] if name else language


def date_range(start: dt.date, end: dt.date | None, language: str) -> str:
    """A date or a range of dates as CLDR writes them in `language`, months in full:
    '12–13 November 2019', '12–13 noiembrie 2019'; ISO dates where CLDR lacks it."""
    data = _dates(language)
    if data is not None:
        # KeyError: a field only Babel knows how to write, or an interval CLDR lacks.
        with contextlib.suppress(Exception):
            return _format_range(data, start, end)
    return _babel_date_range(start, end, language)


def _babel_date_range(start: dt.date, end: dt.date | None, language: str) -> str:
    """`date_range` written by Babel itself."""
    from babel.dates import format_date, format_interval, parse_pattern

    locale = cldr_locale(language)
    if locale is None:
        return _iso_range(start, end)
    if not end or end == start:
        return format_date(start, format="long", locale=locale)
    # CLDR has interval patterns with abbreviated months only (yMMMd); widen them, as
    # CLDR's own fallback rules allow, rather than write "nov." in a newsletter.
    patterns = locale.interval_formats.get("yMMMd")
    if not patterns:
        return format_interval(start, end, skeleton="yMMMd", locale=locale)
    for field in _RANGE_FIELDS:
        if field in patterns and _field(start, field) != _field(end, field):
            return "".join(
                parse_pattern(_wide(pattern)).apply(day, locale)
                for pattern, day in zip(patterns[field], (start, end), strict=True)
            )
    return format_date(start, format="long", locale=locale)


#: The fields whose difference picks an interval pattern, the largest first.
_RANGE_FIELDS = ("y", "M", "d")


def _iso_range(start: dt.date, end: dt.date | None) -> str:
    return start.isoformat() + (f" – {end.isoformat()}" if end and end != start else "")


def _field(day: dt.date, field: str) -> int:
    return {"y": day.year, "M": day.month, "d": day.day}[field]


def _wide(pattern: str) -> str:
    """The pattern with abbreviated month names (MMM, LLL) written in full."""
    return re.sub(r"(?<![ML])(MMM|LLL)(?![ML])", lambda m: m.group(1) + m.group(1)[0], pattern)


#: What `_babel_date_range` reads of a language's CLDR data, as `_dates` keeps it: each
#: pattern as Babel's `%`-format with the names of its fields; the month names by field
#: (M3: abbreviated, M4: wide, M5: narrow; L: stand-alone); None where CLDR lacks the locale.
_Dates = dict[str, Any]
_MONTH_WIDTHS = {3: "abbreviated", 4: "wide", 5: "narrow"}
_MONTH_CONTEXTS = {"M": "format", "L": "stand-alone"}


def _format_range(data: _Dates, start: dt.date, end: dt.date | None) -> str:
    """`_babel_date_range` from the kept data; KeyError where only Babel can tell."""
    if data["locale"] is None:
        return _iso_range(start, end)
    if not end or end == start:
        return _apply(data["long"], start, data["months"])
    patterns = data["interval"]
    if not patterns:
        raise KeyError("yMMMd")  # Babel's format_interval falls back on other skeletons
    for field in _RANGE_FIELDS:
        if field in patterns and _field(start, field) != _field(end, field):
            return "".join(
                _apply(pattern, day, data["months"])
                for pattern, day in zip(patterns[field], (start, end), strict=True)
            )
    return _apply(data["long"], start, data["months"])


def _apply(pattern: list[Any], day: dt.date, months: dict[str, list[str]]) -> str:
    """Babel's `DateTimePattern.apply` of a pattern kept as [format, field names]."""
    text, names = pattern
    values: dict[str, str] = {}
    for name in names:
        char, width = name[0], len(name)
        if char == "d":
            values[name] = f"{day.day:0{width}d}"  # Babel's '%0*d' % (width, value)
        elif char == "y":
            year = f"{day.year:0{width}d}"
            values[name] = year[-2:] if width == 2 else year
        elif char in _MONTH_CONTEXTS:
            values[name] = f"{day.month:0{width}d}" if width <= 2 else months[name][day.month - 1]
        else:
            raise KeyError(name)
    result: str = text % values
    return result


@functools.lru_cache(maxsize=64)
def _dates(language: str) -> _Dates | None:
    """The language's date data: from the cache folder, else compiled with Babel and kept
    there; None when Babel cannot compile it (`date_range` then asks Babel, and gets its
    error)."""
    folder = user_cache_folder("dates")
    path = folder / f"cldr-{_babel_version()}.json" if folder else None
    kept: dict[str, _Dates] = {}
    if path is not None and path.is_file():
        # Not kept yet, or damaged: compiled below, and the file replaced.
        with contextlib.suppress(ValueError, OSError):
            kept = json.loads(path.read_bytes())
        kept = kept if isinstance(kept, dict) else {}
        found = kept.get(language)
        if isinstance(found, dict) and "locale" in found:
            return found
    try:
        data = _compile_dates(language)
    except Exception:
        return None
    if path is not None:
        # A cache folder that cannot be written: the next command compiles again.
        with contextlib.suppress(OSError):
            write_atomically(path, json.dumps({**kept, language: data}).encode())
    return data


def _compile_dates(language: str) -> _Dates:
    """What `_format_range` needs of the language's CLDR data, read with Babel."""
    from babel.dates import get_date_format, parse_pattern, tokenize_pattern

    def kept(pattern: str) -> list[Any]:
        fields = [value for kind, value in tokenize_pattern(pattern) if kind == "field"]
        return [parse_pattern(pattern).format, [f[0] * int(f[1]) for f in fields]]

    locale = cldr_locale(language)
    if locale is None:
        return {"locale": None}
    patterns = locale.interval_formats.get("yMMMd")
    interval = (
        {f: [kept(_wide(p)) for p in patterns[f]] for f in _RANGE_FIELDS if f in patterns}
        if patterns
        else None
    )
    months: dict[str, list[str]] = {}
    for char, context in _MONTH_CONTEXTS.items():
        for width, name in _MONTH_WIDTHS.items():
            names = locale.months.get(context, {}).get(name, {})
            if all(month in names for month in range(1, 13)):
                months[char * width] = [names[month] for month in range(1, 13)]
    return {
        "locale": str(locale),
        "long": kept(get_date_format("long", locale=locale).pattern),
        "interval": interval,
        "months": months,
    }
