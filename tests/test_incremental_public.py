"""public/ is written incrementally: a publish renders only the files whose inputs changed,
and what it leaves is byte for byte what a full build of the same site writes."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.approval import approve
from bulletin.content.approvers import ApproverKey, load
from bulletin.content.entries import load_entry
from bulletin.pipeline import public
from bulletin.pipeline.planning import plan
from bulletin.pipeline.write import STATE, write_public
from bulletin.store.database import connect
from tests.conftest import FIXTURE_SITE

NEW = "2026-01-05-another-entry"


def _publish(site: Path) -> str:
    result = core.publish(site)
    assert result.ended is core.Ended.COMPLETED, result.message
    return result.report.edition


def _approve(site: Path, path: Path) -> None:
    config = load_config(site)
    entry, problems = load_entry(config, path)
    assert entry is not None, problems
    key = load(FIXTURE_SITE.parent / "approvers" / "press-office.key")
    signer = ApproverKey("press-office", config.approvers["press-office"].name, key)
    approve(entry, signer, dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))


def _add_entry(site: Path, slug: str, title: str = "Another") -> None:
    source = sorted((site / "content").rglob("*.md"))[0]
    text = source.read_text().replace("title: ", f"title: {title} ", 1)
    path = site / "content" / f"{slug}.md"
    path.write_text(text)
    _approve(site, path)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "preview" not in p.parts
    }


def _full_build(site: Path, tmp_path: Path) -> dict[str, bytes]:
    """Every file of public/ rendered from scratch, from a copy of the site without its
    caches and state. public/ itself stays: calendars take SEQUENCE and DTSTAMP from it."""
    full = tmp_path / "full"
    shutil.rmtree(full, ignore_errors=True)
    shutil.copytree(site, full)
    for cache in (full / ".bulletin").glob("*.cache"):
        cache.unlink()
    (full / ".bulletin" / STATE).unlink()
    config = load_config(full)
    edition = plan(config, connect(config.database_url), record=False)
    return edition.files


def _same(site: Path, tmp_path: Path) -> None:
    incremental, rebuilt = _tree(site / "public"), _full_build(site, tmp_path)
    assert {n for n in incremental if not n.startswith("static/")} == rebuilt.keys()
    assert [n for n in rebuilt if incremental[n] != rebuilt[n]] == []


def test_a_publish_renders_only_what_changed(site: Path) -> None:
    _publish(site)
    config = load_config(site)
    engine = connect(config.database_url)
    again = plan(config, engine, record=False)
    assert again.files == {}  # nothing changed: nothing rendered, nothing checked
    assert "entries/2019-11-13-sofia-workshop/index.html" in again.inputs

    _add_entry(site, NEW)
    edition = plan(config, engine)  # the next edition, as a publish plans it
    assert edition.entries[0].slug == NEW
    pages = [n for n in edition.files if n.startswith("entries/")]
    assert sorted(pages) == [f"entries/{NEW}/event.ics", f"entries/{NEW}/index.html"]
    assert {"feed.xml", "atom.xml", "feed.json", "calendar.ics", "index.html"} <= set(
        edition.files
    )  # each carries the new item


def test_incremental_public_is_byte_identical_to_a_full_build(site: Path, tmp_path: Path) -> None:
    _publish(site)
    _add_entry(site, NEW)
    _publish(site)  # incremental: the first edition's pages are not rendered again
    _same(site, tmp_path)

    # An edit is always seen: the entry's page, feeds and calendars follow it.
    path = site / "content" / f"{NEW}.md"
    path.write_text(path.read_text().replace("title: Another", "title: Edited", 1))
    _approve(site, path)
    config = load_config(site)
    edition = plan(config, connect(config.database_url), record=False)
    assert b"Edited" in edition.files[f"entries/{NEW}/index.html"]
    write_public(config, edition.files, edition.inputs)
    _same(site, tmp_path)


def test_a_deleted_or_stale_state_renders_everything_again(site: Path, tmp_path: Path) -> None:
    _publish(site)
    config = load_config(site)
    engine = connect(config.database_url)
    (site / "public" / "feed.xml").unlink()  # a file gone from public/ is written again
    assert set(plan(config, engine, record=False).files) == {"feed.xml"}
    (config.state_dir / STATE).write_bytes(b"not a pickle")  # damaged: a full build
    edition = plan(config, engine, record=False)
    assert "index.html" in edition.files and "feed.xml" in edition.files


def test_an_entry_file_gone_from_public_comes_back_with_the_next_edition(site: Path) -> None:
    """The files of one entry are asked for all at once (Inputs.each): one deleted since
    the last publish is rendered again, beside the new entry's, and only it."""
    _publish(site)
    config = load_config(site)
    old = "2019-11-13-sofia-workshop"
    (site / "public" / "entries" / old / "index.html").unlink()
    (site / "public" / "entries" / old / "event.ics").unlink()
    _add_entry(site, NEW)
    edition = plan(config, connect(config.database_url))
    pages = sorted(n for n in edition.files if n.startswith("entries/"))
    assert pages == [
        f"entries/{old}/event.ics",
        f"entries/{old}/index.html",
        f"entries/{NEW}/event.ics",
        f"entries/{NEW}/index.html",
    ]


def test_older_editions_move_to_a_page_per_year(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(public, "FRONT_PAGE_EDITIONS", 1)
    first = _publish(site)
    _add_entry(site, NEW)
    second = _publish(site)
    year = first[:4]
    index = (site / "public" / "index.html").read_text()
    assert second in index and f"{first}/index.html" not in index
    assert f'href="archive/{year}/index.html"' in index
    page = (site / "public" / "archive" / year / "index.html").read_text()
    assert f'href="../../{first}/index.html"' in page and f"../../entries/{NEW}/" in page
    _same(site, tmp_path)


def test_feeds_carry_the_newest_entries_only(site: Path) -> None:
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text() + "\n[feeds]\nitems = 1\n")
    _add_entry(site, NEW)
    _publish(site)
    feed = (site / "public" / "feed.xml").read_text()
    assert feed.count("<item>") == 1 and NEW in feed


def test_the_gate_skips_only_calendar_events_it_checked_byte_for_byte(site: Path) -> None:
    from bulletin.compliance import calendar_outputs

    _publish(site)
    config = load_config(site)
    entries = {e.slug: e for e in core.validate(config)[0]}
    whole = (site / "public" / "calendar.ics").read_bytes()
    own = (site / "public" / "entries" / "2019-11-13-sofia-workshop" / "event.ics").read_bytes()
    block = own[own.index(b"BEGIN:VEVENT") : own.index(b"END:VEVENT\r\n") + 12]
    assert block in whole
    every = [o.name for o in calendar_outputs("calendar.ics", whole, entries)]
    rest = [o.name for o in calendar_outputs("calendar.ics", whole, entries, {block})]
    assert len(rest) == len(every) - 1 and not any("sofia" in name for name in rest)
    # The same event with one byte changed is read and checked again.
    changed = whole.replace(block, block.replace(b"SEQUENCE:0", b"SEQUENCE:1"))
    assert changed != whole
    assert len(calendar_outputs("calendar.ics", changed, entries, {block})) == len(every)


def test_compiled_bytecode_does_not_render_public_again(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code that renders public/ is in its fingerprint, its bytecode is not: a command
    run with PYTHONDONTWRITEBYTECODE, or one that imports a module first, changes no page."""
    from bulletin.pipeline import write

    code = tmp_path / "package"
    (code / "render" / "__pycache__").mkdir(parents=True)
    (code / "render" / "pages.py").write_text("PAGES = 1\n")
    monkeypatch.setattr(write, "_PACKAGE", code)
    config = load_config(site)
    before = write.fingerprint(config)
    (code / "render" / "__pycache__" / "pages.cpython-311.pyc").write_bytes(b"\x00compiled")
    assert write.fingerprint(config) == before
    (code / "render" / "pages.py").write_text("PAGES = 2\n")
    assert write.fingerprint(config) != before


def test_files_are_written_whole_into_folders_made_once(tmp_path: Path) -> None:
    from bulletin.files import write_atomically, write_if_changed

    folders: set[Path] = set()
    page = tmp_path / "public" / "entries" / "one" / "index.html"
    assert write_if_changed(page, b"<p>one</p>", mode=0o644, folders=folders)
    assert folders == {page.parent} and page.read_bytes() == b"<p>one</p>"
    assert oct(page.stat().st_mode & 0o777) == "0o644"
    assert not write_if_changed(page, b"<p>one</p>", folders=folders)  # the same bytes
    assert write_if_changed(page, b"<p>two</p>!", folders=folders)  # another size: written
    assert page.read_bytes() == b"<p>two</p>!"
    # A folder removed after it was made (by hand, under a run) is made again.
    shutil.rmtree(page.parent)
    write_atomically(page, b"<p>three</p>", folders=folders)
    assert page.read_bytes() == b"<p>three</p>"
    assert [p.name for p in page.parent.iterdir()] == ["index.html"]  # no temporary file left


def test_a_build_reads_each_new_event_once_in_its_own_file(site: Path) -> None:
    from bulletin.content.entries import load_entries
    from bulletin.render.renderer import EditionInfo, Renderer

    config = load_config(site)
    entries = load_entries(config).entries
    now = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
    files: dict[str, bytes] = {}
    archive = [EditionInfo("2026-01-05-1", now, tuple(entries))]
    outputs = public.render_public(
        config, Renderer(config), archive, now, files, public.Inputs(None), public.reader(config)
    )
    assert {"calendar.ics", "en/calendar.ics", "tags/firearms/calendar.ics"} <= files.keys()
    read = sorted(o.name for o in outputs if " event " in o.name)
    assert read == sorted(
        f"public/entries/{e.slug}/event.ics event {e.slug} (DESCRIPTION)"
        for e in entries
        if e.is_event
    )
