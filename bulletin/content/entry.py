"""An entry: `Entry`, as loaded and validated from its file; and how the entry cache
stores one. Its light fields go in the cache's records, its heavy ones (body, HTML, front
matter, line numbers) are pickled apart and read when first used: an entry made from the
cache is a `_Stored`, which the rest of bulletin cannot tell from an `Entry` (see its
docstring). `ENTRY_PARTS` is what `load_entries` gives the cache."""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulletin.content.cache import HeavyPart, Split


@dataclass(frozen=True)
class Entry:
    """One news or event entry, validated, with its body rendered to safe HTML."""

    path: Path
    display: str  # the path as users see it, relative to the site
    slug: str
    title: str
    date: dt.date
    language: str
    funding: str
    status: str
    body: str
    html: str
    end_date: dt.date | None = None
    location: str = ""
    summary: str = ""
    tags: tuple[str, ...] = ()
    publish_at: dt.datetime | None = None
    send_not_after: dt.datetime | None = None
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    approval: str | None = None
    translation_of: str | None = None  # the slug of the entry this one translates
    kind: str = "event"  # "event" or "news": calendars carry events only
    start_time: dt.time | None = None  # wall-clock times in the site's time zone
    end_time: dt.time | None = None
    meta: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    body_line: int = 1
    #: a digest of the file's text: with the path, status, configuration and the parsing
    #: code, it decides all of the entry (see `pipeline.public.entry_digest`)
    source: bytes = field(default=b"", compare=False, repr=False)

    @property
    def published(self) -> dt.datetime:
        """When the entry became public: its publish_at, else its approval time."""
        when = self.publish_at or self.approved_at
        if when is None:
            return dt.datetime.combine(self.date, dt.time(), tzinfo=dt.UTC)
        return when

    @property
    def is_event(self) -> bool:
        """Whether calendars carry it: every entry but those of `kind: news`."""
        return self.kind == "event"

    def line(self, name: str) -> int | None:
        return self.lines.get(name)


#: the fields an entry from the cache reads from the cache's file when first used (see
#: `_Stored`): most of an entry's bytes, needed only for the entries a publish renders
_HEAVY = ("body", "html", "meta", "lines")
_FIELDS = tuple(f.name for f in dataclasses.fields(Entry))
#: the others, stored with the path's text
_LIGHT = tuple(name for name in _FIELDS if name not in _HEAVY and name != "path")
_COMPARED = operator.attrgetter(*(f.name for f in dataclasses.fields(Entry) if f.compare))


class _Stored(Entry):
    """An entry from the cache whose heavy fields are still in the cache's file, read when
    one of them is first used (then all of them are in its `__dict__`, in the fields'
    order). In all else it is an Entry: it equals and hashes as the Entry of the same
    fields, either way round; `dataclasses.replace` and the constructor give a plain Entry;
    it pickles and copies to one. Threads may use it at once: each that finds the heavy
    fields unread may read them, and all get equal fields. Its `__dict__` lacks them until
    then; it is only ever an entry with its source's digest, so `entry_digest` never hashes
    its `__dict__` (it only keeps the digest there)."""

    __slots__ = ("_heavy",)
    _heavy: HeavyPart | None

    def __new__(cls, *args: Any, **fields: Any) -> Entry:  # type: ignore[misc]
        # Called as a class (`dataclasses.replace` calls the entry's class), it makes a
        # plain Entry: Python skips __init__ for what is not a _Stored.
        return Entry(*args, **fields)

    def __getattr__(self, name: str) -> Any:  # only for what __dict__ does not hold
        if name not in _HEAVY:
            raise AttributeError(f"'Entry' object has no attribute {name!r}")
        # Where the heavy part is, first: it is dropped only once all of __dict__ is in place.
        heavy = self._heavy
        light = self.__dict__
        if name in light or heavy is None:
            return self.__dict__[name]
        stored = pickle.loads(_read(heavy))  # noqa: S301 -- the entry cache, bulletin's own
        found = {**light, **dict(zip(_HEAVY, stored, strict=True))}
        whole = {name: found[name] for name in _FIELDS}
        object.__setattr__(self, "__dict__", whole)
        object.__setattr__(self, "_heavy", None)
        return whole[name]

    def __eq__(self, other: object) -> bool:
        if type(other) is not Entry and type(other) is not _Stored:
            return NotImplemented
        return bool(_COMPARED(self) == _COMPARED(other))

    __hash__ = Entry.__hash__

    def __repr__(self) -> str:
        return repr(_plain(self._fields()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_plain, (self._fields(),))

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


def _read(heavy: HeavyPart) -> bytes:
    parts, offset, length = heavy
    return parts.read(offset, length)


def _plain(fields: dict[str, Any]) -> Entry:
    """The Entry of these fields (all of them, in order): what a stored one pickles to."""
    entry = object.__new__(Entry)
    entry.__dict__.update(fields)
    return entry


def _entry_parts(entry: Entry) -> tuple[str, dict[str, Any], bytes] | None:
    """How the cache stores an entry: its path's text, its light fields, the pickle of its
    heavy ones (copied from the cache, for an entry from the cache whose heavy fields are
    unread). An entry not from a file (without its source's digest) is stored whole: its
    users read all of its `__dict__`."""
    if not entry.source or type(entry) not in (Entry, _Stored):
        return None
    heavy = getattr(entry, "_heavy", None)  # before __dict__: see _Stored.__getattr__
    fields = entry.__dict__
    # The path's place kept first, for the Path the cache passes `_entry_join`.
    light = {"path": None} | {name: fields[name] for name in _LIGHT}
    if heavy is not None:
        return str(entry.path), light, _read(heavy)
    stored = tuple(fields[name] for name in _HEAVY)
    return str(entry.path), light, pickle.dumps(stored, pickle.HIGHEST_PROTOCOL)


def _entry_join(path: Path, light: dict[str, Any], heavy: HeavyPart) -> Entry:
    entry = object.__new__(_Stored)
    light["path"] = path
    object.__setattr__(entry, "__dict__", light)
    object.__setattr__(entry, "_heavy", heavy)
    return entry


#: how the entry cache stores an entry
ENTRY_PARTS = Split(Entry, _entry_parts, _entry_join)
