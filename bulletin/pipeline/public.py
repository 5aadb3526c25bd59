"""Renders public/ — archive pages, feeds, calendars — and lists what the gates must check.

Only what changed is rendered. Each file's inputs (its entries, editions and names, under
the fingerprint of the configuration, templates, catalogs and rendering code) are digested;
a file whose digest is the one public/ was last written from (`write.PublicState`) is left
as it stands, neither rendered nor checked again, since rendering it again would give the
same bytes. So a publish costs what changed, not the archive's size; a test holds the
result byte for byte to a full build.

The archive's front page shows the newest editions; when there are more, the others are on
one page per year (`archive/<year>/index.html`), so that no page grows with the archive.
Feeds carry the newest `[feeds] items` entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
import stat
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from bulletin.compliance import Output, calendar_outputs, feed_outputs, json_feed_outputs
from bulletin.config.model import Config
from bulletin.content.entries import Entry
from bulletin.content.translations import variant
from bulletin.pipeline.variants import site_languages
from bulletin.pipeline.write import SITE, PublicState
from bulletin.render.calendars import calendar_files
from bulletin.render.feeds import FeedItems, atom, feed_groups, json_feed, rss
from bulletin.render.notices import notices_for
from bulletin.render.renderer import EditionInfo, Renderer


class Outputs(Protocol):
    """Where rendered outputs go for the gates: a list, or `pipeline.gates.Gates`."""

    def append(self, output: Output, /) -> None: ...

    def extend(self, outputs: Iterable[Output], /) -> None: ...


#: the editions public/index.html shows; with more, each year has a page of its own
FRONT_PAGE_EDITIONS = 20


#: where an entry keeps its digest once made (in its own __dict__: a frozen dataclass's
#: fields are not touched, and a copy made by dataclasses.replace makes its own)
_DIGEST = "_bulletin_digest"


def entry_digest(entry: Entry) -> bytes:
    """A digest of all an entry holds. An entry loaded from a file is decided by the file's
    text, its path and its status (the only field changed after loading: a translation is
    withdrawn with its original), under the fingerprints of the configuration and the
    parsing code that its users check; any other entry by all its fields."""
    known: bytes | None = entry.__dict__.get(_DIGEST)
    if known is not None:
        return known
    if entry.source:  # a digest of fixed length, a path (no NUL in it), the status
        parts = (entry.source, os.fsencode(entry.path), entry.status.encode())
        digest = hashlib.sha256(b"\0".join(parts)).digest()
    else:
        fields = {k: v for k, v in entry.__dict__.items() if k != _DIGEST}
        state = (fields, entry.meta, entry.lines)
        digest = hashlib.sha256(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)).digest()
    entry.__dict__[_DIGEST] = digest
    return digest


def entry_digests(entries: Iterable[Entry]) -> bytes:
    """The digests of `entries`, one after the other."""
    get = _DIGEST
    return b"".join([e.__dict__.get(get) or entry_digest(e) for e in entries])


class Inputs:
    """The digest of each file's inputs (the fingerprint of everything else is the state's).
    `current(name, key)`: whether public/ holds `name` as rendered from inputs `key`; None
    renders everything."""

    def __init__(self, state: PublicState | None) -> None:
        self._current = state.current if state else None
        self._state = state
        self.keys: dict[str, str] = {}

    def unchanged(self, archive: Sequence[EditionInfo]) -> bool:
        """Whether the whole archive is as public/ was last written from, every file still
        there: then nothing is rendered and each file's inputs are the ones remembered."""
        digest = hashlib.sha256()
        for info in archive:
            digest.update(f"{info.id}\0{info.published!r}\0".encode())
            digest.update(entry_digests(info.entries))
        self.keys[SITE] = site = digest.hexdigest()
        state = self._state
        if state is None or not state.holds(site):
            return False
        self.keys = dict(state.inputs)
        return True

    def wanted(self, name: str, entries: Sequence[Entry], *more: object) -> bool:
        """Remember `name`'s inputs; whether it must be rendered (it is not current). The
        state is per name and per fingerprint, so a key is made of the rest alone."""
        self.keys[name] = key = _key(entries, more)
        return self._current is None or not self._current(name, key)

    def was(self, name: str, entries: Sequence[Entry], *more: object) -> bool:
        """Whether public/`name` was last written from these inputs (it may be gone)."""
        return self._state is not None and self._state.inputs.get(name) == _key(entries, more)

    def each(self, files: dict[str, Entry]) -> list[str]:
        """`wanted(name, [entry])` for each file of one entry (an entry's own page or
        calendar file), `files` being name → entry: the names to render, in their order.
        An archive has thousands of these: one pass, no call per file."""
        keys = {name: entry_digest(entry).hex() for name, entry in files.items()}
        self.keys.update(keys)
        if self._state is None:
            return list(keys)
        stored = self._state.inputs
        stale = {name for name, key in keys.items() if stored.get(name) != key}
        stale.update(self._state.missing(name for name in keys if name not in stale))
        return [name for name in keys if name in stale] if stale else []


def _key(entries: Sequence[Entry], more: tuple[object, ...]) -> str:
    """The digest of a file's inputs: its entries and the rest."""
    if len(entries) == 1 and not more:  # an entry's own page or calendar file
        return entry_digest(entries[0]).hex()
    digest = hashlib.sha256(entry_digests(entries))
    digest.update(repr(more).encode())
    return digest.hexdigest()


def render_public(
    config: Config,
    renderer: Renderer,
    archive: Sequence[EditionInfo],
    published: dt.datetime,
    files: dict[str, bytes],
    inputs: Inputs,
    previous: Callable[[str], bytes | None],
    outputs: Outputs | None = None,
) -> Outputs:
    """Render into `files` the public/ files `inputs` wants (all of them on a first build);
    the outputs the gates must check go into `outputs` as they are rendered (a new list if
    None), which is returned."""
    if outputs is None:
        outputs = []
    if inputs.unchanged(archive):
        return outputs
    feed_entries = list({e.slug: e for info in archive for e in info.entries}.values())
    outputs.extend(_archive_pages(config, renderer, archive, feed_entries, files, inputs))
    items = FeedItems(config)  # each item's content made once, however many feeds carry it
    for folder, (names, chosen) in feed_groups(config, feed_entries).items():
        for file_name, build in (("feed.xml", rss), ("atom.xml", atom), ("feed.json", json_feed)):
            name = folder + file_name
            if inputs.wanted(name, chosen, sorted(names.items())):
                files[name] = build(config, chosen, folder, items, **names)
                read = json_feed_outputs if name.endswith(".json") else feed_outputs
                outputs.extend(read(f"public/{name}", files[name], chosen))
    # Events taken from their own files as they stand were checked when those were written.
    # A calendar made from the one public/ holds, with the new events put in, is checked
    # for those (`fresh`). An event built in this run is read in its own file (`built`): the
    # calendars that carry it, byte for byte the same, are not read for it again.
    reused: set[bytes] = set()
    built: set[bytes] = set()
    fresh: dict[str, bytes] = {}
    calendars = calendar_files(
        config, feed_entries, published, previous, inputs.wanted, reused, inputs.each,
        inputs.was, fresh, built,
    )  # fmt: skip
    by_slug = {e.slug: e for e in feed_entries}
    carried = reused | built
    for name, ics in calendars.items():
        files[name] = ics
        checked = carried if name.endswith("calendar.ics") else reused  # not an event's own
        outputs.extend(calendar_outputs(f"public/{name}", fresh.get(name, ics), by_slug, checked))
    for info in archive:
        name = f"{info.id}/index.html"
        edition = (info.id, info.published)
        if inputs.wanted(name, info.entries, edition):
            files[name] = renderer.edition_page(info).encode()
            outputs.append(page_output(config, f"public/{name}", files[name], info.entries, 1))
        for language in page_languages(config, info.entries):
            # The page shows the edition's entries in `language`: its inputs are theirs.
            name = f"{info.id}/{language}/index.html"
            if inputs.wanted(name, info.entries, edition, language):
                shown = EditionInfo(info.id, info.published, tuple(variant(info.entries, language)))
                files[name] = renderer.edition_page(shown, language).encode()
                outputs.append(page_output(config, f"public/{name}", files[name], shown.entries, 2))
    pages = {f"entries/{entry.slug}/index.html": entry for entry in feed_entries}
    for name in inputs.each(pages):
        entry = pages[name]
        files[name] = renderer.entry_page(entry).encode()
        outputs.append(page_output(config, f"public/{name}", files[name], (entry,), 2))
    return outputs


def _archive_pages(
    config: Config,
    renderer: Renderer,
    archive: Sequence[EditionInfo],
    feed_entries: Sequence[Entry],
    files: dict[str, bytes],
    inputs: Inputs,
) -> list[Output]:
    """public/index.html, and with more editions than it shows, archive/<year>/index.html."""
    outputs = []
    calendars = sorted({e.language for e in feed_entries if e.is_event})
    by_year: dict[str, list[EditionInfo]] = {}
    if len(archive) > FRONT_PAGE_EDITIONS:
        for info in archive:
            by_year.setdefault(renderer.year(info.published), []).append(info)
    years = list(by_year)
    front = archive[:FRONT_PAGE_EDITIONS] if years else archive
    pages: dict[str, tuple[Sequence[EditionInfo], str | None]] = {"index.html": (front, None)}
    pages |= {f"archive/{year}/index.html": (shown, year) for year, shown in by_year.items()}
    for name, (shown, year) in pages.items():
        entries = [e for info in shown for e in info.entries]
        editions = [(info.id, info.published, len(info.entries)) for info in shown]
        if inputs.wanted(name, entries, editions, years, calendars):
            html = renderer.archive(shown, years=years, year=year, calendars=calendars)
            files[name] = html.encode()
            depth = name.count("/")
            outputs.append(page_output(config, f"public/{name}", files[name], entries, depth))
    return outputs


def page_languages(config: Config, entries: Sequence[Entry]) -> list[str]:
    """The languages an edition has a web page of its own in: those of its entries."""
    present = {e.language.lower() for e in entries}
    return [code for code in site_languages(config) if code.lower() in present]


def page_output(
    config: Config, name: str, html: bytes, entries: Sequence[Entry], depth: int
) -> Output:
    srcs = {(n.rule, n.language): n.page_src("../" * depth) for n in notices_for(config, entries)}
    return Output(name, True, html.decode(), tuple(entries), srcs, "templates/base.html.j2")


def reader(config: Config) -> Callable[[str], bytes | None]:
    """Reads a file of public/ as the last build left it (None if there is none)."""

    public = str(config.public_dir)

    def read(name: str) -> bytes | None:
        # A calendar reads thousands of these: plain calls, no Path made. A link is not
        # followed (O_NOFOLLOW), anything but a regular file is not read.
        try:
            fd = os.open(f"{public}/{name}", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            with os.fdopen(fd, "rb") as handle:
                return handle.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None
        except OSError:
            return None

    return read
