"""Loads the entries of a site's content/ folder and validates each one against the config."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import operator
import os
import pickle
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bulletin.config.model import Config
from bulletin.content.cache import EntryCache, HeavyPart, Split
from bulletin.content.events import read_event_fields
from bulletin.content.fields import FrontMatter, read_fields
from bulletin.content.frontmatter import (
    FrontMatterError,
    control_problems,
    parse_front_matter,
    read_entry_text,
    split_front_matter,
)
from bulletin.content.markup import find_unsafe_html, render_markdown
from bulletin.errors import Problem, display_path

__all__ = ["Entry", "Loaded", "content_files", "load_entries", "load_entry", "split_front_matter"]

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")


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
    #: code, it decides all of the entry (see `digest`)
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
    then; it is only ever an entry with its source's digest, whose users (`entry_digest`)
    never read its `__dict__`."""

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


@dataclass
class Loaded:
    """The outcome of loading a site's entries: what could be read, and every problem."""

    entries: list[Entry]
    problems: list[Problem]


def content_files(config: Config, paths: Iterable[Path] = ()) -> list[Path]:
    """The Markdown files named (files or folders), or all under content/, sorted."""
    roots = list(paths) or [config.content_dir]
    #: each file by its text: its folder's Path and its name (None: a file named)
    files: dict[str, tuple[Path, str] | None] = {}
    for root in roots:
        if root == config.content_dir and not root.exists():
            continue  # load_entries reports it
        if root.is_dir():
            for folder, names in _markdown_under(root):
                parent = Path(folder)
                files.update((f"{folder}{os.sep}{n}", (parent, n)) for n in names)
        else:
            files[str(root)] = None

    # One Path made per file: a folder's files are made from its Path, which is much
    # cheaper than parsing each path anew.
    return [
        Path(name) if (found := files[name]) is None else _child(*found)
        for name in sorted(files, key=path_order)
    ]


def path_order(name: str) -> str:
    """A key that sorts path texts as their Paths sort, part by part: the separator made
    the smallest character (no part holds it, or a NUL), so that a part ends before any
    longer part it begins. Plain string comparison of these keys is list comparison of
    the parts, without a list made per path."""
    return name.replace(os.sep, "\0")


def _child(folder: Path, name: str) -> Path:
    """`folder / name`, for a plain file name: made without parsing the path again where
    pathlib offers that."""
    make = getattr(folder, "_make_child_relpath", None)
    return make(name) if make is not None else folder / name


def _markdown_under(root: Path) -> Iterable[tuple[str, list[str]]]:
    """Each folder under `root` with its .md files, hidden ones left out. Linked folders are
    not entered (one linking to / would walk the whole machine); linked files are listed,
    and reading refuses those that lead outside the site."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        yield folder, [n for n in names if n.endswith(".md") and not n.startswith(".")]


def load_entries(config: Config, paths: Iterable[Path] = ()) -> Loaded:
    """Load and validate entries; every problem found is returned, none raised."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    if not paths and not config.content_dir.is_dir():
        problems.append(
            Problem(
                "content/",
                "content-missing",
                "the site has no content/ folder; create it and write entries there",
            )
        )
    files = content_files(config, paths)
    # Only the files that changed are parsed and validated again.
    cache = EntryCache(config, paths=files, split=ENTRY_PARTS)
    for path in files:
        entry, found = cache.load(path, lambda p: load_entry(config, p))
        problems.extend(found)
        if entry is not None:
            entries.append(entry)
    cache.save(complete=not paths)
    everywhere = (
        files if not paths else content_files(config) if config.content_dir.is_dir() else []
    )
    problems.extend(_duplicate_slugs(config, entries, everywhere))
    return Loaded(sorted(entries, key=lambda e: e.slug), problems)


def _duplicate_slugs(config: Config, entries: list[Entry], everywhere: list[Path]) -> list[Problem]:
    problems = []
    # Subfolders are allowed, so two files can share a name; slugs must stay unique.
    seen = set(map(str, everywhere))
    seen.update(name for e in entries if (name := str(e.path)) not in seen)
    stems = list(map(_stem, seen))
    if len(set(stems)) == len(stems):
        return []  # every file has a slug of its own (most sites, most runs)
    by_slug: dict[str, set[str]] = {}
    for name, stem in zip(seen, stems, strict=True):
        by_slug.setdefault(stem, set()).add(name)
    for entry in entries:
        if len(by_slug.get(entry.slug, ())) < 2:
            continue  # the only file of its slug (most of them: no path is resolved)
        mine = entry.path.resolve()
        others = [Path(n) for n in by_slug[entry.slug] if Path(n).resolve() != mine]
        if others:
            names = ", ".join(display_path(p, config.root) for p in sorted(others))
            problems.append(
                Problem(
                    entry.display,
                    "slug-duplicate",
                    f"slug {entry.slug!r} is also used by {names}; rename one of the files",
                )
            )
    return problems


def _stem(name: str) -> str:
    """Path(name).stem, without making a Path: a file name without its .md."""
    base = name.rpartition(os.sep)[2]
    if base.endswith(".md") and not base.startswith("."):
        return base[:-3]
    return os.path.splitext(base)[0]


def load_entry(config: Config, path: Path) -> tuple[Entry | None, list[Problem]]:
    """Read and validate one entry file."""
    shown = display_path(path, config.root)
    text, problems = read_entry_text(path, shown, config.root)
    if text is None:
        return None, problems
    control = control_problems(text, shown)
    if control:
        return None, control
    parts = split_front_matter(text)
    if parts is None:
        return None, [
            Problem(
                shown,
                "front-matter-missing",
                "the file must start with YAML front matter between two '---' lines",
                1,
            )
        ]
    front, body, body_line = parts
    try:
        meta, lines = parse_front_matter(front)
    except FrontMatterError as exc:
        return None, [Problem(shown, exc.code, exc.message, exc.line)]
    if not isinstance(meta, dict):
        return None, [Problem(shown, "yaml-invalid", "front matter must be a mapping of fields", 2)]
    source = hashlib.sha256(text.encode()).digest()
    return _validate(config, path, shown, meta, lines, body, body_line, source)


def _validate(
    config: Config,
    path: Path,
    shown: str,
    meta: dict[Any, Any],
    lines: dict[str, int],
    body: str,
    body_line: int,
    source: bytes = b"",
) -> tuple[Entry | None, list[Problem]]:
    front = FrontMatter(shown, meta, lines, config.site.tz)
    fields = read_fields(front, config)
    event = read_event_fields(front, fields.date, fields.end_date)
    _check_file(front, path, body, body_line)
    if front.problems:
        return None, front.problems
    assert fields.date is not None  # a missing date is a problem
    entry = Entry(
        path=path,
        display=shown,
        slug=path.stem,
        title=fields.title,
        date=fields.date,
        end_date=fields.end_date,
        location=fields.location,
        summary=fields.summary,
        language=fields.language,
        funding=fields.funding,
        status=fields.status,
        tags=fields.tags,
        publish_at=fields.publish_at,
        send_not_after=fields.send_not_after,
        approved_by=fields.approved_by,
        approved_at=fields.approved_at,
        approval=fields.approval,
        translation_of=fields.translation_of,
        kind=event.kind,
        start_time=event.start_time,
        end_time=event.end_time,
        body=body,
        html=render_markdown(body),
        meta=meta,
        lines=lines,
        body_line=body_line,
        source=source,
    )
    return entry, []


def _check_file(front: FrontMatter, path: Path, body: str, body_line: int) -> None:
    """The checks of the file itself: its name as a slug, and its body."""
    if not _SLUG.fullmatch(path.stem):  # match() and $ would pass a final newline
        front.problem(
            None,
            "slug-invalid",
            f"file name {path.name!r} makes a bad slug; use lowercase letters, digits and "
            "hyphens, like 2019-11-13-firearms-workshop.md",
        )
    if not body.strip():
        front.problem(
            None,
            "body-empty",
            "the entry has no body text; write it below the front matter",
            body_line,
        )
    for unsafe in find_unsafe_html(body):
        front.problem(
            None,
            "html-unsafe",
            f"{unsafe.snippet!r} is not allowed in an entry (scripts, frames, forms and event "
            "handlers never reach readers); remove it",
            body_line + unsafe.line - 1 if unsafe.line else body_line,
        )
