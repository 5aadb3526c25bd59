"""A large build reads its outputs for the gates on several processes: what it finds, and
what it renders, is what an in-process build finds and renders, in the same order."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from bulletin.config import load_config
from bulletin.content.approval import approve
from bulletin.content.entries import load_entry
from bulletin.errors import ConfigError, ContentError, Problem
from bulletin.pipeline import gates
from bulletin.pipeline.planning import Plan, render
from bulletin.render.renderer import EditionInfo
from bulletin.render.templates import DEFAULT_TEMPLATES
from tests.conftest import approver_key

ENTRIES = 24


def _large(site: Path, problems: bool) -> None:
    """The fixture site with ENTRIES more entries; with `problems`, one whose page breaks
    an accessibility rule (headings that skip a level) and one whose page lacks the EU
    disclaimer (a custom template drops it there)."""
    config = load_config(site)
    source = sorted((site / "content").glob("*.md"))[0].read_text(encoding="utf-8")
    paths = []
    for number in range(ENTRIES):
        text = source.replace("title: ", f"title: Number {number} ", 1)
        if problems and number == 3:
            text += "\n\n#### Skipped a level\n\nUnder a heading too deep.\n"
        path = site / "content" / f"2020-01-{number + 1:02d}-entry-{number}.md"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    if problems:
        base = (DEFAULT_TEMPLATES / "base.html.j2").read_text(encoding="utf-8")
        dropped = "{% if 'Number 7 ' not in entries[0].title %}{{ notice.disclaimer }}{% endif %}"
        custom = base.replace("{{ notice.disclaimer }}", dropped)
        assert custom != base
        (site / "templates").mkdir(exist_ok=True)
        (site / "templates" / "base.html.j2").write_text(custom, encoding="utf-8")
    for number, path in enumerate(paths):
        entry, found = load_entry(config, path)
        assert entry is not None, found
        when = dt.datetime(2020, 2, 1, 9, number, tzinfo=dt.UTC)
        approve(entry, approver_key(config), when)


def _render(site: Path, processes: int) -> tuple[Plan, list[str]]:
    """A build's rendering of every entry as one edition; the problems as a user reads them."""
    from bulletin.pipeline.planning import validate

    config = load_config(site)
    entries, found = validate(config)
    assert found == []
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    edition = Plan("2026-01-01-1", entries, now)
    try:
        render(
            config, edition, [EditionInfo("2026-01-01-1", now, tuple(entries))], False, processes
        )
    except ContentError as exc:
        return edition, [str(p) for p in exc.problems]
    return edition, []


@pytest.fixture
def few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """A pool from the first few pages on, a few pages per batch: the fixture site is small.
    Gives, for each batch handed over, whether the pool's process read it."""
    monkeypatch.setattr(gates, "THRESHOLD", 3)
    monkeypatch.setattr(gates, "BATCH", 4)
    read: list[bool] = []
    verdict = gates.Gates.verdict

    def noted(self: gates.Gates) -> tuple[list[Problem], list[str]]:
        found = verdict(self)
        read.extend(future.exception() is None for _, future in self._batches)
        return found

    monkeypatch.setattr(gates.Gates, "verdict", noted)
    return read


def test_processes_render_and_find_what_one_process_does(
    site: Path, few_at_a_time: list[bool]
) -> None:
    _large(site, problems=False)
    alone, alone_problems = _render(site, processes=1)
    assert few_at_a_time == []
    pooled, pooled_problems = _render(site, processes=2)
    assert len(few_at_a_time) > 2 and all(few_at_a_time)  # read by the pool's processes
    assert alone_problems == pooled_problems == []
    assert len(alone.files) > ENTRIES
    assert pooled.files == alone.files
    assert pooled.notes == alone.notes


def test_processes_find_the_same_problems_in_the_same_order(
    site: Path, few_at_a_time: list[bool]
) -> None:
    _large(site, problems=True)
    _, alone = _render(site, processes=1)
    _, pooled = _render(site, processes=2)
    assert len(few_at_a_time) > 2 and all(few_at_a_time)
    assert pooled == alone
    assert [p for p in alone if "a11y-heading-order" in p and "<h4>" in p], alone
    page = "public/entries/2020-01-08-entry-7/index.html lacks the disclaimer"
    assert [p for p in alone if "funding-disclaimer-missing" in p and page in p], alone


@pytest.mark.usefixtures("few_at_a_time")
def test_a_batch_no_process_could_read_is_read_here(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that died (or raised) costs time, not a finding: its batch is read in the
    build's own process, as an in-process build reads it."""
    _large(site, problems=True)
    _, alone = _render(site, processes=1)

    submitted = []

    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def submit(self, *args: object) -> Future[object]:
            submitted.append(args)
            future: Future[object] = Future()
            future.set_exception(BrokenProcessPool("a process died"))
            return future

        def shutdown(self, **kwargs: object) -> None:
            pass

    monkeypatch.setattr("concurrent.futures.ProcessPoolExecutor", Broken)
    _, pooled = _render(site, processes=2)
    assert submitted
    assert pooled == alone


def test_a_small_build_starts_no_process(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pool was started for the sample site")

    monkeypatch.setattr("concurrent.futures.ProcessPoolExecutor", refused)
    _, problems = _render(site, processes=2)
    assert problems == []


def test_the_number_of_processes_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(gates.WORKERS, "3")
    assert gates.workers() == 3
    monkeypatch.delenv(gates.WORKERS)
    assert gates.workers() >= 1
    for wrong in ("0", "two", "-1"):
        monkeypatch.setenv(gates.WORKERS, wrong)
        with pytest.raises(ConfigError, match=gates.WORKERS):
            gates.workers()
