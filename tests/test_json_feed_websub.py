"""JSON Feed 1.1 beside RSS and Atom (same items, ids and content, valid against the
specification), feeds that link each other, and WebSub: hub links in every feed and a ping
to a real local hub after a publish, retried, never holding up the email."""

from __future__ import annotations

import json
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import feedparser
import jsonschema
import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.delivery import websub
from bulletin.delivery.transports import MemoryTransport, TransportFactory
from bulletin.errors import ContentError
from bulletin.pipeline import public
from bulletin.pipeline.write import STATE
from bulletin.store.database import connect
from tests.webhook_server import webhook_server

SCHEMA = json.loads(
    (Path(__file__).parent / "fixtures/schemas/jsonfeed-1.1.schema.json").read_text()
)
SITE = "https://news.example.org/"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
FOLDERS = ("", "en/", "ro/", "tags/firearms/", "tags/drugs/", "tags/training/")


def _publish(site: Path, sent: list | None = None) -> core.Result:
    transports = TransportFactory(
        lambda: MemoryTransport(lambda m: sent.append(m) if sent is not None else None)
    )
    return core.publish(site, steps=core.Steps(transports))


def test_json_feeds_are_valid_and_carry_the_same_items_as_rss_and_atom(site):
    assert _publish(site).ended is core.Ended.COMPLETED
    public = site / "public"
    for folder in FOLDERS:
        data = json.loads((public / folder / "feed.json").read_bytes())
        jsonschema.validate(data, SCHEMA)
        assert data["feed_url"] == f"{SITE}{folder}feed.json"
        rss = feedparser.parse((public / folder / "feed.xml").read_bytes())
        atom = feedparser.parse((public / folder / "atom.xml").read_bytes())
        ids = [item["id"] for item in data["items"]]
        assert ids == [e.id for e in rss.entries] == [e.id for e in atom.entries], folder
        raw = ET.fromstring((public / folder / "feed.xml").read_bytes())  # noqa: S314
        contents = [i.findtext(CONTENT) for i in raw.iter("item")]
        assert [item["content_html"] for item in data["items"]] == contents, folder
        for item in data["items"]:
            assert "European Commission is not responsible" in item["summary"] or (
                "Comisia Europeană nu este responsabilă" in item["summary"]
            )
        for feed, own in ((rss, "feed.xml"), (atom, "atom.xml")):
            alternates = {
                link.href: link.get("type") for link in feed.feed.links if link.rel == "alternate"
            }
            others = {"feed.xml": "application/rss+xml", "atom.xml": "application/atom+xml",
                      "feed.json": "application/feed+json"}  # fmt: skip
            for name, kind in others.items():
                if name != own:
                    assert alternates.get(f"{SITE}{folder}{name}") == kind, (folder, own, name)
    page = (public / "index.html").read_text()
    assert 'type="application/feed+json"' in page and 'href="feed.json"' in page


def test_the_compliance_gate_covers_json_feeds(site, monkeypatch):
    assert _publish(site).ended is core.Ended.COMPLETED
    config = load_config(site)
    (config.state_dir / STATE).unlink()  # every file of public/ is rendered and checked again
    real = public.json_feed

    def without_disclaimer(*args, **kwargs):
        return real(*args, **kwargs).decode().replace("European Commission is not", "").encode()

    monkeypatch.setattr(public, "json_feed", without_disclaimer)
    with pytest.raises(ContentError) as refused:
        core.plan(config, connect(config.database_url), record=False)
    messages = [p.message for p in refused.value.problems]
    assert messages and all("feed.json item" in m for m in messages)
    assert any(m.startswith("public/feed.json item") for m in messages)
    assert any("lacks the disclaimer" in m for m in messages)


def _with_hub(site: Path, hub: str) -> None:
    with (site / "bulletin.toml").open("a", encoding="utf-8") as toml:
        toml.write(f'\n[feeds]\nwebsub_hub = "{hub}"\n')


def _pings(server) -> list[dict[str, list[str]]]:
    return [urllib.parse.parse_qs(body.decode()) for body in server.bodies("/hub")]


def test_a_publish_pings_the_hub_for_each_changed_feed_retrying_a_failure(site, monkeypatch):
    monkeypatch.setattr(websub, "BACKOFF_SECONDS", 0.01)
    with webhook_server() as hub:
        hub.plan("/hub", ["500", "503:0"])  # the first ping fails twice, then goes through
        _with_hub(site, hub.url("/hub"))
        sent: list = []
        result = _publish(site, sent)
        assert result.ended is core.Ended.COMPLETED and sent  # the email went out
        pings = _pings(hub)
        changed = {
            SITE + p.removeprefix("public/")
            for p in result.report.public
            if p.endswith(("feed.xml", "atom.xml", "feed.json"))
        }
        assert len(changed) == 3 * len(FOLDERS)
        assert all(p["hub.mode"] == ["publish"] for p in pings)
        urls = [p["hub.url"][0] for p in pings]
        assert set(urls) == changed and len(urls) == len(changed) + 2  # two retries
        assert any(f"told of {len(changed)} changed feeds" in n for n in result.report.notes)
        for name in ("feed.xml", "atom.xml"):
            parsed = feedparser.parse((site / "public" / name).read_bytes())
            assert [link.href for link in parsed.feed.links if link.rel == "hub"] == [
                hub.url("/hub")
            ]
        data = json.loads((site / "public/feed.json").read_bytes())
        assert data["hubs"] == [{"type": "WebSub", "url": hub.url("/hub")}]

        again = _publish(site)  # nothing new, no feed changed: the hub hears nothing
        assert again.report.edition is None and len(_pings(hub)) == len(pings)


def test_a_hub_that_is_down_is_reported_and_holds_nothing_up(site, monkeypatch):
    monkeypatch.setattr(websub, "BACKOFF_SECONDS", 0.01)
    with webhook_server() as hub:
        url = hub.url("/hub")
    _with_hub(site, url)  # the server is gone: connections are refused
    sent: list = []
    result = _publish(site, sent)
    assert result.ended is core.Ended.COMPLETED and sent
    failed = [n for n in result.report.notes if "was not told of" in n]
    assert failed and all("ConnectionError" in n for n in failed)


def test_a_hub_that_refuses_the_request_is_not_asked_again(monkeypatch):
    monkeypatch.setattr(websub, "BACKOFF_SECONDS", 0.01)
    with webhook_server() as hub:
        hub.plan("/hub", ["400"])
        result = websub.ping(hub.url("/hub"), [SITE + "feed.xml"])
        assert result.failed == {SITE + "feed.xml": "HTTP 400"}
        assert len(hub.bodies("/hub")) == 1


def test_check_refuses_a_hub_that_is_not_a_url(site):
    _with_hub(site, "hub.example.org")
    from tests.conftest import run_cli

    result = run_cli("check", site=site)
    assert result.returncode == 2
    assert "websub_hub" in result.stderr and "absolute http(s) URL" in result.stderr
