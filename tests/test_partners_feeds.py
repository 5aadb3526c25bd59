"""The feeds partners follow: one per tag (public/tags/<tag>/) and per language
(public/<language>/), RSS and Atom, with the same notice and checks as the main feed."""

from __future__ import annotations

import json
import shutil

import feedparser
import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.errors import ContentError
from bulletin.pipeline import public
from bulletin.pipeline.write import STATE
from bulletin.render.feeds import tag_folder
from bulletin.store.database import connect
from tests.conftest import run_cli

SOFIA, CURS = "2019-11-13-sofia-workshop", "2019-12-05-curs-regional"
DISCLAIMERS = ("European Commission is not responsible", "Comisia Europeană nu este responsabilă")
FEEDS = {
    "tags/firearms/": [SOFIA],
    "tags/drugs/": [SOFIA],
    "tags/training/": [CURS],
    "en/": [SOFIA],
    "ro/": [CURS],
}


def _published(site):
    """The fixture site after its first edition went out (to memory)."""
    transports = TransportFactory(lambda: MemoryTransport(lambda m: None))
    assert core.publish(site, steps=core.Steps(transports)).ended is core.Ended.COMPLETED
    return load_config(site)


def test_build_writes_a_feed_per_tag_and_language_with_only_their_entries(site):
    _published(site)
    shutil.rmtree(site / "public")  # the publish wrote them: build must write them afresh
    result = run_cli("build", "--json", site=site)
    assert result.returncode == 0, result.stderr
    written = set(json.loads(result.stdout)["public"])
    for folder, slugs in FEEDS.items():
        for name in ("feed.xml", "atom.xml"):
            path = f"public/{folder}{name}"
            assert path in written
            parsed = feedparser.parse((site / path).read_bytes())
            assert not parsed.bozo, (path, parsed.get("bozo_exception"))
            assert [e.id.rstrip("/").rpartition("/")[2] for e in parsed.entries] == slugs
            self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
            assert self_links == [f"https://news.example.org/{folder}{name}"]
            for item in parsed.entries:
                content = item.content[0].value
                assert any(d in content for d in DISCLAIMERS), path
                assert "static/eu-emblem.png" in content
    ro = feedparser.parse((site / "public/ro/atom.xml").read_bytes())
    assert ro.feed.language == "ro"
    assert ro.feed.id == "https://news.example.org/ro/"


def test_compliance_check_covers_the_tag_and_language_feeds(site, monkeypatch):
    config = _published(site)
    (config.state_dir / STATE).unlink()  # every file of public/ is rendered and checked again
    real = public.rss

    def without_disclaimer(config, entries, folder="", *args, **names):
        feed = real(config, entries, folder, *args, **names)
        if folder != "tags/firearms/":
            return feed
        return feed.decode().replace("European Commission is not", "").encode()

    monkeypatch.setattr(public, "rss", without_disclaimer)
    with pytest.raises(ContentError) as refused:
        core.plan(config, connect(config.database_url), record=False)
    messages = [p.message for p in refused.value.problems]
    assert messages and all("public/tags/firearms/feed.xml" in m for m in messages)
    assert any("lacks the disclaimer" in m for m in messages)


@pytest.mark.parametrize(
    ("tag", "folder"),
    [("firearms", "tags/firearms/"), ("SIRAS", "tags/siras/"),
     ("Organised crime", "tags/organised-crime/"), ("ü/../x", "tags/x/"), ("…", "tags/tag/")],
)  # fmt: skip
def test_tag_folders_are_safe_in_urls_and_paths(tag, folder):
    assert tag_folder(tag) == folder
