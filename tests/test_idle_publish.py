"""A publish with nothing to send is remembered (pipeline.idle): the next one that finds the
site as it was says so without loading the archive, and anything that could change what it
finds (an edit, a new file, the configuration, the ledger, public/, time) makes it load
the site again."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.content.approval import approve
from bulletin.content.entries import content_files, load_entry
from bulletin.pipeline import idle, planning
from bulletin.pipeline.write import STATE
from bulletin.store.database import connect, editions
from bulletin.store.statuses import EditionStatus
from tests.conftest import approver_key

RO = "2019-12-05-curs-regional.md"


@pytest.fixture
def quiet(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture site, published once: its next publish has nothing to send. Its files
    were written a moment ago, which the memo does not trust to their times (a test of its
    own below): here they count as old."""
    monkeypatch.setattr(idle, "RACY_NS", 0)
    result = core.publish(site)
    assert result.ended is core.Ended.COMPLETED, result.message
    assert result.report.edition
    return site


def _plan(site: Path, now: dt.datetime | None = None) -> tuple[core.Plan, bool]:
    """The site's plan, and whether it was the memo's (no entry was loaded)."""
    loaded = []
    real = planning.validate

    def validate(*args: object, **kwargs: object) -> object:
        loaded.append(True)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    config = load_config(site)
    try:
        planning.validate = validate  # type: ignore[assignment]
        edition = planning.plan(config, connect(config.database_url), now=now)
    finally:
        planning.validate = real
    return edition, not loaded


def _noop(site: Path) -> None:
    result = core.publish(site)
    assert result.ended is core.Ended.COMPLETED, result.message
    assert result.report.edition is None


def test_the_memo_says_what_loading_the_site_says(quiet: Path) -> None:
    _noop(quiet)  # leaves the memo
    remembered, hit = _plan(quiet)
    assert hit
    (quiet / ".bulletin" / idle.FILE).unlink()
    loaded, hit = _plan(quiet)
    assert not hit
    assert remembered.edition_id is None and remembered.entries == [] == loaded.entries
    assert remembered.notes == loaded.notes == ["2 entries, 2 approved, 2 already published"]
    assert remembered.inputs == loaded.inputs and remembered.files == {} == loaded.files


def _edit(site: Path) -> None:
    path = site / "content" / RO
    path.write_text(path.read_text().replace("Polițiști", "Polițiștii", 1))
    _approve(site, path)


def _approve(site: Path, path: Path) -> None:
    config = load_config(site)
    entry, problems = load_entry(config, path)
    assert entry is not None, problems
    approve(entry, approver_key(config), dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))


def _touch(site: Path) -> None:
    os.utime(site / "content" / RO)


def _configure(site: Path) -> None:
    toml = site / "bulletin.toml"
    toml.write_text(toml.read_text().replace('title = "', 'title = "The ', 1))


def _unapprove(site: Path) -> None:
    path = site / "content" / RO
    path.write_text(path.read_text().replace("status: approved", "status: draft", 1))


def _new_file(site: Path) -> None:
    source = site / "content" / RO
    (site / "content" / "2019-12-06-draft.md").write_text(
        source.read_text().replace("status: approved", "status: draft", 1)
    )


def _forget_public(site: Path) -> None:
    (site / ".bulletin" / STATE).unlink()


def _damage(site: Path) -> None:
    (site / ".bulletin" / idle.FILE).write_bytes(b"not a memo")


@pytest.mark.parametrize(
    "change", [_edit, _touch, _configure, _unapprove, _new_file, _forget_public, _damage]
)
def test_a_change_loads_the_site_again(quiet: Path, change) -> None:
    _noop(quiet)
    assert _plan(quiet)[1]
    change(quiet)
    edition, hit = _plan(quiet)
    assert not hit
    assert edition.edition_id is None  # nothing of these makes an entry to send


def test_a_file_gone_from_public_is_written_again(quiet: Path) -> None:
    _noop(quiet)
    page = next((quiet / "public" / "entries").rglob("index.html"))
    before = page.read_bytes()
    page.unlink()
    assert not _plan(quiet)[1]
    _noop(quiet)
    assert page.read_bytes() == before
    assert _plan(quiet)[1]


def test_a_new_edition_in_the_ledger_is_seen(quiet: Path) -> None:
    _noop(quiet)
    config = load_config(quiet)
    engine = connect(config.database_url)
    with engine.begin() as db:  # an edition recorded by another command, or by hand
        db.execute(
            editions.insert().values(
                id="2026-01-01-1", created_at=dt.datetime(2026, 1, 1), status=EditionStatus.DONE
            )
        )
    assert not _plan(quiet)[1]


def test_a_new_approved_entry_is_sent(quiet: Path) -> None:
    _noop(quiet)
    source = quiet / "content" / RO
    path = quiet / "content" / "2019-12-07-another.md"
    path.write_text(source.read_text().replace("title: ", "title: Another ", 1))
    _approve(quiet, path)
    edition, hit = _plan(quiet)
    assert not hit and [e.slug for e in edition.entries] == ["2019-12-07-another"]


def test_an_entry_waiting_for_its_time_ends_the_memo_then(quiet: Path) -> None:
    source = quiet / "content" / RO
    path = quiet / "content" / "2019-12-08-later.md"
    text = source.read_text().replace("title: ", "title: Later ", 1)
    path.write_text(text.replace("2019-12-06T10:00:00", "2099-01-01T09:00:00", 1))
    config = load_config(quiet)
    entry, problems = load_entry(config, path)
    assert entry is not None and entry.publish_at, problems
    approve(entry, approver_key(config), dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))
    _noop(quiet)
    before = entry.publish_at - dt.timedelta(seconds=1)
    edition, hit = _plan(quiet, now=before)
    assert hit and edition.edition_id is None
    assert "1 waiting for their publish_at" in edition.notes[0]
    edition, hit = _plan(quiet, now=entry.publish_at)
    assert not hit and [e.slug for e in edition.entries] == ["2019-12-08-later"]


def test_files_written_a_moment_ago_leave_no_memo(site: Path) -> None:
    # The real margin: these files were all written within it, so their times may not
    # yet tell a later edit (made within the same tick of a coarse clock) from them.
    assert idle.RACY_NS >= 1_000_000_000
    assert core.publish(site).report.edition
    _noop(site)
    assert not (site / ".bulletin" / idle.FILE).exists()
    assert not _plan(site)[1]


def test_a_link_among_the_entries_leaves_no_memo(quiet: Path) -> None:
    config = load_config(quiet)
    assert idle.Memo(config, connect(config.database_url)).key is not None
    (quiet / "content" / "2019-12-09-link.md").symlink_to(quiet / "content" / RO)
    # A link's own times say nothing of its target's text.
    assert idle.Memo(config, connect(config.database_url)).key is None


def test_the_files_listed_are_the_files_loaded(quiet: Path) -> None:
    (quiet / "content" / "sub").mkdir()
    (quiet / "content" / "sub" / "2019-12-10-nested.md").write_text("---\ntitle: x\n---\n")
    config = load_config(quiet)
    listed = idle.Memo(config, connect(config.database_url)).listed
    assert [str(p) for p in listed.files] == list(listed.seen)
    assert listed.files == content_files(config)
