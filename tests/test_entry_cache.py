"""Entries are parsed and validated once per content: a later load takes them from the
site's cache, and an edit, a new file or a removed one is always seen."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.content import cache as cache_module
from bulletin.content.cache import FILE, RECENT, EntryCache
from bulletin.content.entries import content_files, load_entries, load_entry
from bulletin.content.entry import ENTRY_PARTS


def _first_entry(site: Path) -> Path:
    return sorted((site / "content").rglob("*.md"))[0]


def test_second_load_comes_from_the_cache_and_sees_an_edit(site: Path) -> None:
    config = load_config(site)
    first = load_entries(config)
    assert (config.state_dir / FILE).exists()

    cache = EntryCache(config, split=ENTRY_PARTS)
    path = _first_entry(site)
    calls: list[Path] = []
    cached = cache.load(path, lambda p: calls.append(p) or load_entry(config, p))
    assert calls == [] and cache.hits == 1
    assert cached[0] in first.entries

    path.write_text(path.read_text().replace("title: ", "title: Edited ", 1))
    again = load_entries(config)
    edited = next(e for e in again.entries if e.path == path)
    assert edited.title.startswith("Edited ")
    assert load_entries(config).entries == again.entries


def test_new_and_removed_files_and_a_broken_cache(site: Path) -> None:
    config = load_config(site)
    before = load_entries(config)
    path = _first_entry(site)
    copy = path.with_name("zz-copy-of-an-entry.md")
    copy.write_bytes(path.read_bytes())
    assert len(load_entries(config).entries) == len(before.entries) + 1
    copy.unlink()
    assert load_entries(config).entries == before.entries

    (config.state_dir / FILE).write_bytes(b"not a pickle")
    assert load_entries(config).entries == before.entries


def _retitled(text: str, letter: str) -> str:
    """`text` with the first letter of its title made `letter`: an edit of the same size."""
    start = text.index("title: ") + len("title: ")
    start += not text[start].isalnum()  # a quoted title
    assert text[start] != letter
    return text[:start] + letter + text[start + 1 :]


def _trusting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written by the test a moment ago count as settled: their times are trusted."""
    monkeypatch.setattr(cache_module, "RACY_NS", -(10**12))


def test_an_unchanged_file_is_not_read_again(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _trusting(monkeypatch)
    config = load_config(site)
    first = load_entries(config)
    cache = EntryCache(config, split=ENTRY_PARTS)
    for path in content_files(config):
        cache.load(path, lambda p: pytest.fail(f"{p} parsed again"))
    assert cache.reads == 0 and cache.hits == len(first.entries)


def test_a_same_size_edit_with_its_mtime_put_back_is_seen(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trusting(monkeypatch)
    config = load_config(site)
    load_entries(config)
    path = _first_entry(site)
    before = os.stat(path)
    text = path.read_text()
    path.write_text(_retitled(text, "X"))
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # only the ctime tells
    entry = next(e for e in load_entries(config).entries if e.path == path)
    assert entry.title.startswith("X")


def test_an_edit_within_a_coarse_clock_tick_is_seen(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system whose times are whole seconds (or where nothing moves them), an
    edit right after the cache was written keeps the file's size and times: a file that
    recent is read and hashed again, never taken on its times."""
    original = cache_module.seen

    def coarse(path: str | Path) -> tuple[int, int, int, int, int] | None:
        found = original(path)
        if found is None:
            return None
        second = time.time_ns() // 10**9 * 10**9
        return (*found[:3], second, second)

    monkeypatch.setattr(cache_module, "seen", coarse)
    config = load_config(site)
    load_entries(config)
    path = _first_entry(site)
    text = path.read_text()
    path.write_text(_retitled(text, "Y"))
    entry = next(e for e in load_entries(config).entries if e.path == path)
    assert entry.title.startswith("Y")


def test_a_file_replaced_or_deleted_is_seen(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _trusting(monkeypatch)
    config = load_config(site)
    before = load_entries(config)
    path = _first_entry(site)
    text = path.read_text()
    path.unlink()
    assert len(load_entries(config).entries) == len(before.entries) - 1
    path.write_text(_retitled(text, "Z"))
    entry = next(e for e in load_entries(config).entries if e.path == path)
    assert entry.title.startswith("Z")


def test_one_new_entry_writes_only_the_recent_records(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _trusting(monkeypatch)
    config = load_config(site)
    before = load_entries(config)
    full = config.state_dir / FILE
    written = full.read_bytes()
    copy = _first_entry(site).with_name("zz-copy-of-an-entry.md")
    copy.write_bytes(_first_entry(site).read_bytes())
    again = load_entries(config)
    assert len(again.entries) == len(before.entries) + 1
    assert full.read_bytes() == written  # the new record went to the recent file
    cache = EntryCache(config, split=ENTRY_PARTS)
    cache.load(copy, lambda p: pytest.fail("the new entry is parsed again"))
    assert cache.reads == 0

    # A damaged recent file, or one of another full file, loses records, never sees wrong.
    (config.state_dir / (FILE + RECENT)).write_bytes(b"damaged")
    assert load_entries(config).entries == again.entries
    for name in (FILE, FILE + RECENT):
        (config.state_dir / name).write_bytes(b"not a pickle")
    assert load_entries(config).entries == again.entries
    cache = EntryCache(config, split=ENTRY_PARTS)
    cache.load(copy, lambda p: pytest.fail("the new entry is parsed again"))


def test_a_large_load_settles_its_entries_and_collects_again_after(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "SETTLED_RECORDS", 0)
    config = load_config(site)
    before = load_entries(config)
    try:
        assert gc.get_freeze_count() > 0 and gc.isenabled()
        assert load_entries(config).entries == before.entries
    finally:
        gc.unfreeze()


def test_content_files_are_listed_as_their_paths_sort(site: Path) -> None:
    config = load_config(site)
    for name in ("a-b.md", "a/z.md", "a.md", "ab/c.md", "a/b/c.md", "a0.md", "b.md"):
        path = config.content_dir / "sorting" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    listed = content_files(config)
    assert listed == sorted(listed) and len(listed) == len(set(listed))
    assert sorted(str(p) for p in listed) != [str(p) for p in listed]  # not as texts sort
