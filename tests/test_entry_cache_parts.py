"""An entry from the cache reads its body, HTML, front matter and line numbers only when
they are used, and is in every other way the entry a fresh load makes."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import threading
from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.config.model import Config
from bulletin.content import cache as cache_module
from bulletin.content.cache import FILE, EntryCache
from bulletin.content.entries import Entry, load_entries, load_entry
from bulletin.content.entry import ENTRY_PARTS

HEAVY = ("body", "html", "meta", "lines")


def _cached_and_fresh(site: Path) -> tuple[Config, list[Entry], list[Entry]]:
    """The site's entries from a second load (from the cache), and each loaded afresh."""
    config = load_config(site)
    load_entries(config)
    cached = load_entries(config).entries
    fresh = [load_entry(config, e.path)[0] for e in cached]
    assert all(isinstance(e, Entry) for e in fresh)
    return config, cached, fresh  # type: ignore[return-value]


def _fields(entry: Entry) -> dict[str, object]:
    return {f.name: getattr(entry, f.name) for f in dataclasses.fields(Entry)}


def test_a_cached_entry_reads_its_heavy_fields_when_first_used(site: Path) -> None:
    _, cached, fresh = _cached_and_fresh(site)
    entry, same = cached[0], fresh[0]
    assert not set(HEAVY) & set(vars(entry))  # not read by the load
    assert entry.title == same.title and entry.path == same.path
    assert entry.line("title") == same.line("title")
    assert list(vars(entry)) == [f.name for f in dataclasses.fields(Entry)]
    for later, one in zip(cached[1:], fresh[1:], strict=True):
        assert (later.html, later.body, later.meta, later.lines) == (
            one.html,
            one.body,
            one.meta,
            one.lines,
        )
        assert _fields(later) == _fields(one)


def test_a_cached_entry_equals_and_hashes_as_a_fresh_one(site: Path) -> None:
    _, cached, fresh = _cached_and_fresh(site)
    for entry, same in zip(cached, fresh, strict=True):
        assert type(same) is Entry and isinstance(entry, Entry)
        assert entry == same and same == entry and not (entry != same or same != entry)
        assert hash(entry) == hash(same)
        assert entry in {same} and same in {entry}
    assert cached[0] != fresh[1] and fresh[1] != cached[0]
    assert cached[0] != dataclasses.replace(fresh[0], title="Another title")
    assert repr(cached[0]) == repr(fresh[0])
    assert dataclasses.asdict(cached[0]) == dataclasses.asdict(fresh[0])


def test_replace_gives_a_plain_entry_with_every_field(site: Path) -> None:
    _, cached, fresh = _cached_and_fresh(site)
    withdrawn = dataclasses.replace(cached[0], status="withdrawn")
    assert type(withdrawn) is Entry and withdrawn.status == "withdrawn"
    assert _fields(withdrawn) == {**_fields(fresh[0]), "status": "withdrawn"}
    assert withdrawn == dataclasses.replace(fresh[0], status="withdrawn")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cached[1].title = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("make", [pickle.loads, copy.copy, copy.deepcopy], ids=str)
def test_a_cached_entry_pickles_and_copies_to_a_plain_entry(site: Path, make: object) -> None:
    _, cached, fresh = _cached_and_fresh(site)
    for entry, same in zip(cached, fresh, strict=True):
        arg = pickle.dumps(entry) if make is pickle.loads else entry
        copied = make(arg)  # type: ignore[operator]
        assert type(copied) is Entry and copied == same and vars(copied) == vars(same)
    assert pickle.dumps(cached[0]).count(b"_Stored") == 0


def test_threads_reading_one_entry_at_once_all_get_its_fields(site: Path) -> None:
    config, _, fresh = _cached_and_fresh(site)
    for _ in range(20):
        entries = load_entries(config).entries
        start = threading.Barrier(4)
        seen: list[tuple[object, ...]] = []

        def read(
            entry: Entry = entries[0],
            wait: threading.Barrier = start,
            seen: list[tuple[object, ...]] = seen,
        ) -> None:
            wait.wait()
            seen.append((entry.lines, entry.html, entry.meta, entry.body))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        same = fresh[0]
        assert seen == [(same.lines, same.html, same.meta, same.body)] * 4
        assert entries[0] == same


def test_entries_read_from_a_cache_since_replaced_read_their_own_fields(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, cached, fresh = _cached_and_fresh(site)
    monkeypatch.setattr(cache_module, "FOLD_MIN", 0)  # every save writes a new full file
    monkeypatch.setattr(cache_module, "FOLD_SHARE", 10**6)
    before = (config.state_dir / FILE).stat().st_ino
    path = cached[0].path
    path.write_text(path.read_text().replace("\n---\n", "\n---\n\nA new first line.\n", 1))
    assert load_entries(config).entries != cached
    assert (config.state_dir / FILE).stat().st_ino != before
    assert [_fields(e) for e in cached] == [_fields(e) for e in fresh]


def test_a_cache_cut_short_under_a_run_is_an_error_never_an_entry(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "RACY_NS", -(10**12))  # the load writes nothing
    config, _, fresh = _cached_and_fresh(site)
    entries = load_entries(config).entries
    os.truncate(config.state_dir / FILE, 100)
    with pytest.raises(OSError, match="cut short"):
        entries[0].html  # noqa: B018
    assert load_entries(config).entries == fresh  # loaded again from the files


def test_the_file_is_closed_when_its_entries_are_gone(site: Path) -> None:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc")
    config = load_config(site)
    load_entries(config)
    count = len(list(fds.iterdir()))
    loaded = load_entries(config)
    assert len(list(fds.iterdir())) > count
    del loaded
    assert len(list(fds.iterdir())) == count


def _misses(config: Config) -> int:
    cache = EntryCache(config, split=ENTRY_PARTS)
    for path in sorted(config.content_dir.rglob("*.md")):
        cache.load(path, lambda p: load_entry(config, p))
    return cache.misses


def test_a_cache_of_an_earlier_format_is_not_used(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(site)
    with monkeypatch.context() as earlier:
        earlier.setattr(cache_module, "FORMAT", cache_module.FORMAT - 1)
        load_entries(config)
        assert _misses(config) == 0
    files = len(list(config.content_dir.rglob("*.md")))
    assert _misses(config) == files

    # The layout before: one pickle of the format, the fingerprint and whole entries.
    load_entries(config)
    cache = EntryCache(config, split=ENTRY_PARTS)
    records = {
        name: (seen, key, (load_entry(config, Path(name))))
        for name, (seen, key, _) in cache._old.items()
    }
    earlier_file = (cache_module.FORMAT - 1, cache._fingerprint, b"g" * 16, records)
    (config.state_dir / FILE).write_bytes(pickle.dumps(earlier_file))
    assert _misses(config) == files
