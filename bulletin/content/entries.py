"""Loads the entries of a site's content/ folder and validates each one against the config."""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulletin.config.model import Config
from bulletin.content.cache import EntryCache, Seen, seen
from bulletin.content.entry import ENTRY_PARTS, Entry
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


@dataclass
class Loaded:
    """The outcome of loading a site's entries: what could be read, and every problem."""

    entries: list[Entry]
    problems: list[Problem]


class Listed:
    """The site's entry files (`content_files`), each with its identity and times as
    `cache.seen` gave them when listed: what a publish compares with the last one's before
    it loads anything, and what loading them then uses rather than ask again. Their Paths
    are made when first asked for (a publish that loads nothing needs none)."""

    def __init__(self, config: Config) -> None:
        self._found = _content_files(config, ())
        self.seen: dict[str, Seen | None] = {name: seen(name) for name in self._found}

    @functools.cached_property
    def files(self) -> list[Path]:
        return _paths(self._found)


def content_files(config: Config, paths: Iterable[Path] = ()) -> list[Path]:
    """The Markdown files named (files or folders), or all under content/, sorted."""
    return _paths(_content_files(config, paths))


#: each file by its text, sorted: its folder's Path and its name (None: a file named)
_Found = dict[str, tuple[Path, str] | None]


def _content_files(config: Config, paths: Iterable[Path]) -> _Found:
    roots = list(paths) or [config.content_dir]
    files: _Found = {}
    for root in roots:
        if root == config.content_dir and not root.exists():
            continue  # load_entries reports it
        if root.is_dir():
            for folder, names in _markdown_under(root):
                parent = Path(folder)
                files.update((f"{folder}{os.sep}{n}", (parent, n)) for n in names)
        else:
            files[str(root)] = None
    return {name: files[name] for name in sorted(files, key=path_order)}


def _paths(found: _Found) -> list[Path]:
    # One Path made per file: a folder's files are made from its Path, which is much
    # cheaper than parsing each path anew.
    return [Path(name) if where is None else _child(*where) for name, where in found.items()]


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


def load_entries(
    config: Config, paths: Iterable[Path] = (), listed: Listed | None = None
) -> Loaded:
    """Load and validate entries (those `paths` names, or all of `listed`, or all of the
    site's); every problem found is returned, none raised."""
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
    files = listed.files if listed and not paths else content_files(config, paths)
    known = listed.seen if listed and not paths else {}

    def identity(name: str) -> Seen | None:
        return known[name] if name in known else seen(name)

    # Only the files that changed are parsed and validated again.
    cache = EntryCache(config, paths=files, split=ENTRY_PARTS)
    for path in files:
        entry, found = cache.load(path, lambda p: load_entry(config, p), identity)
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
