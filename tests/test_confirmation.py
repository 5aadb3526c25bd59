"""The approver sees what they approve: previews through signed links that expire with the
confirmation, a confirmation page that stands on its own, and a form whose unticked entries
wait for a later edition. (tests/test_deployments.py runs the same on a real Prefect server
and worker.)"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.pipeline import confirmation
from bulletin.store.database import connect
from bulletin.store.subscribers import import_csv
from bulletin.tokens import secret_key
from bulletin.web.app import create_app
from tests.test_browser import CHROMIUM

SOFIA, CURS = "2019-11-13-sofia-workshop", "2019-12-05-curs-regional"
NOW = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)


@dataclass
class Answer:
    approve: bool
    name: str
    entries: list[str] | None = None


class Confirming(core.Steps):
    """Steps whose person answers `answer`, after `look` has seen the previews."""

    def __init__(self, answer, look=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.answer, self.look, self.expires = answer, look, None

    def preview(self, config, edition, expires):
        self.expires = expires
        counts = super().preview(config, edition, expires)
        if self.look is not None:
            self.look(config, edition, expires)
        return counts

    def confirm(self, edition, timeout):
        return self.answer


def _site(site: Path):
    config = load_config(site)
    engine = connect(config.database_url)
    import_csv(engine, config, site / "subscribers.csv", "news")
    return config, engine


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_previews_open_only_with_a_valid_unexpired_link_for_this_edition(site):
    with (site / "bulletin.toml").open("a") as toml:  # an email partner has its preview too
        toml.write('\n[partners.rilo]\nname = "RILO"\nemail = "desk@rilo.example"\n')
    _, engine = _site(site)
    seen = {}

    def look(config, edition, expires):
        clock = Clock(NOW)
        app = create_app(config, engine, secret_key(config.state_dir), clock=clock)
        client = TestClient(app, base_url=config.site.url, follow_redirects=False)
        links = confirmation.preview_links(config, edition, NOW + dt.timedelta(hours=1))
        assert set(links) == {"news", "news (ro)", "desk", "partner rilo", "edition page"}
        for what, link in links.items():
            answer = client.get(_path(link))
            assert answer.status_code == 200, what
            assert answer.headers["cache-control"] == "private, no-store"
            assert "noindex" in answer.headers["x-robots-tag"]
        page = client.get(_path(links["news"])).text
        assert "Workshop on firearms and drug trafficking" in page
        assert 'src="../../static/eu-emblem.png"' in page  # the emblem resolves from /preview/
        edition_page = client.get(_path(links["edition page"])).text
        assert 'src="../../static/eu-emblem.png"' in edition_page
        bare = links["news"].split("?")[0]
        token = links["news"].split("t=")[1]
        refused = {
            "no token": _path(bare),
            "a forged token": _path(bare + "?t=" + token[:-3] + "abc"),
            "another edition's token": _path(
                confirmation.preview_links(config, _other(edition), NOW + dt.timedelta(hours=1))[
                    "news"
                ]
            ),
            "a path outside the previews": f"/preview/../bulletin.toml?t={token}",
            "an unknown preview": f"/preview/nobody/email.html?t={token}",
        }
        for why, path in refused.items():
            assert client.get(path).status_code == 404, why
        clock.now = NOW + dt.timedelta(hours=1, seconds=1)  # the pause has expired
        assert client.get(_path(links["news"])).status_code == 404
        seen["checked"] = True

    steps = Confirming(Answer(True, "Ana Popescu"), look, engine=engine)
    result = core.publish(site, require_confirmation=True, steps=steps)
    assert seen.get("checked") and result.ended is core.Ended.COMPLETED, result.message
    assert steps.expires is not None


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _other(edition):
    import dataclasses

    return dataclasses.replace(edition, edition_id="2001-01-01-1")


def test_the_confirmation_page_stands_on_its_own(site):
    config, engine = _site(site)
    edition = core.plan(config, engine)
    expires = NOW + dt.timedelta(hours=1)
    links = confirmation.preview_links(config, edition, expires)
    audiences = confirmation.audiences(config, engine, edition, links)
    page = confirmation.page(config, edition, audiences, links, "Passed.", expires, NOW)
    for key, (email, _) in edition.emails.items():
        assert email.subject in page, key
        assert links[key] in page
    news = next(a for a in audiences if a.name == "list news")
    assert news.recipients == 2 and f"| list news | {news.subject} | 2 |" in page
    for entry in edition.entries:
        assert entry.title in page and entry.approved_by in page
        assert entry.approved_at.isoformat() in page
    assert "EU funding notice: Passed." in page
    # One row and one preview per language variant, with its own subject and readers.
    (ro_email, _) = edition.variants["news"]["ro"]
    assert f"| list news (ro) | {ro_email.subject} | 1 | ro |" in page
    assert links["news (ro)"] in page and "/preview/news/ro/email.html?t=" in links["news (ro)"]
    client = TestClient(create_app(config, engine, secret_key(config.state_dir), clock=Clock(NOW)))
    core.preview(config, engine, edition)
    shown = client.get(_path(links["news (ro)"]))
    assert shown.status_code == 200 and 'lang="ro"' in shown.text
    assert "## Warnings" in page


def test_the_confirmation_page_warns_of_an_empty_list_and_a_closed_window(site):
    config = load_config(site)
    engine = connect(config.database_url)  # no subscribers imported: the list is empty
    edition = core.plan(config, engine)
    late = NOW.replace(year=2100)  # every send_not_after has passed by then
    entries = [replace(e, send_not_after=NOW) for e in edition.entries[:1]]
    edition.entries[:1] = entries
    audiences = confirmation.audiences(config, engine, edition, {})
    found = confirmation.warnings(config, edition, audiences, late)
    assert "list news has no recipients" in found
    assert any(e.startswith(f"{entries[0].slug}: its send_not_after") for e in found)


def test_an_unticked_entry_waits_for_the_next_edition(site):
    _, engine = _site(site)
    steps = Confirming(Answer(True, "Ana Popescu", [SOFIA]), engine=engine)
    result = core.publish(site, require_confirmation=True, steps=steps)
    assert result.ended is core.Ended.COMPLETED, result.message
    assert result.report.entries == [SOFIA]
    assert any("left for a later edition (unticked): " + CURS in n for n in result.report.notes)
    outbox = site / "outbox" / "email" / result.report.edition
    bodies = [p.read_bytes() for p in outbox.glob("*.eml")]
    assert bodies and not any(b"curs-regional" in b for b in bodies)

    following = core.publish(site, steps=core.Steps(engine=engine))
    assert following.report.entries == [CURS]


def test_confirming_with_no_entry_ticked_sends_nothing(site):
    _, engine = _site(site)
    steps = Confirming(Answer(True, "Ana Popescu", []), engine=engine)
    result = core.publish(site, require_confirmation=True, steps=steps)
    assert result.ended is core.Ended.CANCELLED
    assert "with no entry ticked" in result.message
    assert not (site / "outbox" / "email").exists() or not any(
        (site / "outbox" / "email").glob("2*/*.eml")
    )


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")
def test_a_preview_link_opens_in_a_browser_from_bulletin_serve(site):
    from playwright.sync_api import sync_playwright

    from tests.web_server import free_port, serving

    port = free_port()
    toml = site / "bulletin.toml"
    toml.write_text(
        toml.read_text().replace("https://news.example.org/", f"http://127.0.0.1:{port}/")
    )
    config, engine = _site(site)
    edition = core.plan(config, engine)
    core.preview(config, engine, edition)
    links = confirmation.preview_links(
        config, edition, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    )
    with serving(site, port=port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 375, "height": 800})
            shown = page.goto(links["news"])
            assert shown.status == 200
            assert "Workshop on firearms and drug trafficking" in page.content()
            emblem = page.locator("img[src$='eu-emblem.png']").first
            assert emblem.evaluate("img => img.complete && img.naturalWidth > 0")
            assert page.goto(links["news"].split("?")[0]).status == 404
        finally:
            browser.close()
    assert re.search(r"\?t=[\w-]+$", links["news"])  # a sealed token (bulletin.tokens)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")
def test_screenshots_of_each_email_open_through_the_same_signed_links(site):
    config, engine = _site(site)
    edition = core.plan(config, engine)
    core.preview(config, engine, edition)
    shots, why = confirmation.screenshots(config, edition)
    assert why is None
    emails = [n for n in core.preview_files(edition) if n.endswith("/email.html")]
    assert "preview/news/ro/email.html" in emails  # each language variant too
    expected = {
        f"preview/screenshots/{name.removesuffix('.html').replace('/', '-')}-{scheme}-{width}.png"
        for name in emails
        for scheme in ("light", "dark")
        for width in (375, 1200)
    }
    assert set(shots) == expected
    links = confirmation.preview_links(config, edition, NOW + dt.timedelta(hours=1), shots)
    client = TestClient(
        create_app(config, engine, secret_key(config.state_dir), clock=Clock(NOW)),
        base_url=config.site.url,
    )
    for key in edition.emails:
        for width in (375, 1200):
            answer = client.get(_path(links[f"screenshot {key}-email-light-{width}"]))
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "image/png"
            assert answer.content.startswith(b"\x89PNG")
            png_width = int.from_bytes(answer.content[16:20], "big")
            assert png_width == width  # the screenshot is as wide as the viewport
    audiences = confirmation.audiences(config, engine, edition, links)
    page = confirmation.page(config, edition, audiences, links, "Passed.", NOW, NOW)
    assert re.search(r"Screenshots: .*\[news-email-light-375\]\(http", page)
    bare = links["screenshot news-email-light-375"].split("?")[0]
    assert client.get(_path(bare)).status_code == 404
