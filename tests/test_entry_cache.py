"""Entries are parsed and validated once per content: a later load takes them from the
site's cache, and an edit, a new file or a removed one is always seen."""

from __future__ import annotations

from pathlib import Path

from bulletin.config import load_config
from bulletin.content.cache import FILE, EntryCache
from bulletin.content.entries import load_entries, load_entry


def _first_entry(site: Path) -> Path:
    return sorted((site / "content").rglob("*.md"))[0]


def test_second_load_comes_from_the_cache_and_sees_an_edit(site: Path) -> None:
    config = load_config(site)
    first = load_entries(config)
    assert (config.state_dir / FILE).exists()

    cache = EntryCache(config)
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
