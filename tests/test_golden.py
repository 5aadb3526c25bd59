"""Golden files for the rendered email (HTML and text) and the feeds of the fixture site.

Regenerate after an intended change with:  BULLETIN_REGENERATE_GOLDEN=1 pytest tests/test_golden.py
and read the diff. Regenerating skips the comparisons (it never passes them), and CI refuses it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import feedparser
import pytest

from bulletin.config import load_config
from bulletin.content.entries import load_entries
from bulletin.content.translations import variant
from bulletin.render.feeds import atom, feed_groups, rss
from bulletin.render.renderer import Renderer
from tests.conftest import FIXTURE_SITE

GOLDEN = Path(__file__).parent / "golden"
REGENERATE_ENV = "BULLETIN_REGENERATE_GOLDEN"
REGENERATE = os.environ.get(REGENERATE_ENV, "") not in ("", "0")
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")
NAMES = ["email.html", "email.txt", "email.subject.txt", "feed.xml", "atom.xml",
         "tags-firearms-feed.xml", "ro-atom.xml",
         "ro-email.html", "ro-email.txt", "ro-email.subject.txt"]  # fmt: skip


def _outputs() -> dict[str, bytes]:
    config = load_config(FIXTURE_SITE)
    entries = load_entries(config).entries
    email = Renderer(config).email(entries, "2019-11-20-1", config.lists["news"].name)
    # The Romanian reader's variant: each item in Romanian where it has a version, else in
    # its original language; the words, dates and lang attributes in Romanian.
    ro = Renderer(config).email(
        variant(entries, "ro"), "2019-11-20-1", config.lists["news"].name, "ro"
    )
    groups = feed_groups(config, entries)  # the tag and language feeds, as a publish makes them
    tag_names, tag = groups["tags/firearms/"]
    ro_names, ro_entries = groups["ro/"]
    return {
        "ro-email.html": ro.html.encode(),
        "ro-email.txt": ro.text.encode(),
        "ro-email.subject.txt": ro.subject.encode() + b"\n",
        "email.html": email.html.encode(),
        "email.txt": email.text.encode(),
        "email.subject.txt": email.subject.encode() + b"\n",
        "feed.xml": rss(config, entries),
        "atom.xml": atom(config, entries),
        "tags-firearms-feed.xml": rss(config, tag, "tags/firearms/", None, **tag_names),
        "ro-atom.xml": atom(config, ro_entries, "ro/", None, **ro_names),
    }


@functools.cache
def _regenerate() -> tuple[int, int]:
    """Write every golden file afresh, once per session: (files written, files changed)."""
    outputs = _outputs()
    changed = 0
    for name in NAMES:
        path = GOLDEN / name
        if not path.exists() or path.read_bytes() != outputs[name]:
            changed += 1
            path.write_bytes(outputs[name])
    return len(NAMES), changed


@pytest.mark.parametrize("name", NAMES)
def test_rendered_output_matches_golden_file(name: str) -> None:
    if REGENERATE:
        if IN_CI:
            pytest.fail(
                f"{REGENERATE_ENV} is set: regeneration is not allowed in CI; the golden "
                "files are compared, never rewritten, there"
            )
        written, changed = _regenerate()
        pytest.skip(f"regenerated {written} files; review the diff ({changed} changed)")
    actual = _outputs()[name]
    path = GOLDEN / name
    assert path.exists(), f"no golden file {path}; regenerate with BULLETIN_REGENERATE_GOLDEN=1"
    assert actual == path.read_bytes(), f"{name} changed; if intended, regenerate and review"


def test_rendering_twice_gives_identical_feeds() -> None:
    first, second = _outputs(), _outputs()
    assert first["feed.xml"] == second["feed.xml"]
    assert first["atom.xml"] == second["atom.xml"]


@pytest.mark.parametrize("name", ["feed.xml", "atom.xml"])
def test_feeds_parse_cleanly_with_guid_dates_and_notice(name: str) -> None:
    parsed = feedparser.parse(_outputs()[name])
    assert not parsed.bozo, parsed.get("bozo_exception")
    # Newest first: the Romanian entry goes out at its publish_at, 2019-12-06, after the
    # English one's approval on 2019-11-20.
    assert [e.title for e in parsed.entries] == [
        "Curs regional privind investigațiile financiare",
        "Workshop on firearms and drug trafficking",
    ]
    for item in parsed.entries:
        assert item.id.startswith("https://news.example.org/entries/")
        assert item.published_parsed is not None
        content = item.content[0].value
        assert "funded by the European Union" in content or "finanțat de Uniunea" in content
        assert "European Commission is not responsible" in content or "Comisia Europeană" in content
    links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert links == [f"https://news.example.org/{name}"]
