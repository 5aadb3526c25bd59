"""The web service in a real browser: Debian's Chromium driven by Playwright, against a real
uvicorn server. Sign up, confirm from the outbox, unsubscribe from an email's link, and
screenshots of the email and the archive at phone and desktop widths."""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.store.database import connect
from bulletin.store.subscribers import export_csv, import_csv
from tests.web_server import free_port, serving

CHROMIUM = Path("/usr/bin/chromium")
WIDTHS = (375, 1200)


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        reason = "Debian's chromium is missing; scripts/test installs it"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"CI runs the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def live(site: Path):
    """The fixture site published once, its links pointing at a server started for the test."""
    port = free_port()
    toml = site / "bulletin.toml"
    toml.write_text(
        toml.read_text().replace("https://news.example.org/", f"http://127.0.0.1:{port}/")
    )
    config = load_config(site)
    engine = connect(config.database_url)
    import_csv(engine, config, site / "subscribers.csv", "news")
    result = core.publish(site, steps=core.Steps(engine=engine))  # into the outbox
    assert result.ended is core.Ended.COMPLETED, result.message
    with serving(site, port=port) as (url, _):
        yield url, config, engine, result.report.edition


def _messages(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        for f in sorted(folder.glob("*.eml"))
    ]


def _statuses(config, engine) -> dict[str, str]:
    rows = export_csv(engine, config, "news").splitlines()[1:]
    return {r.split(",")[0]: r.split(",")[3] for r in rows}


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_reader_subscribes_confirms_from_the_outbox_and_unsubscribes(browser, live):
    url, config, engine, edition_id = live
    page = browser.new_page(viewport={"width": 375, "height": 800})
    page.goto(url + "subscribe")
    page.get_by_label("Email address").fill("reader@example.net")
    page.get_by_role("combobox", name="Language").select_option("ro")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Verificați-vă căsuța de email").wait_for()
    assert _statuses(config, engine)["reader@example.net"] == "pending"

    folder = config.outbox_dir / "email" / "confirmations"
    deadline = time.monotonic() + 20
    while not list(folder.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.1)  # the email goes after the answer
    (confirmation,) = _messages(folder)
    text = confirmation.get_body(("plain",)).get_content()
    link = re.search(re.escape(url) + r"confirm/\S+", text).group(0)
    page.goto(link)
    page.get_by_role("button", name="Confirmă abonarea").click()
    page.get_by_role("heading", name="Sunteți abonat").wait_for()
    assert _statuses(config, engine)["reader@example.net"] == "active"

    (received,) = [
        m for m in _messages(config.outbox_dir / "email" / edition_id) if "ana@" in str(m["To"])
    ]
    unsubscribe = str(received["List-Unsubscribe"]).split(",")[0].strip(" <>")
    assert unsubscribe.startswith(url + "unsubscribe/")
    page.goto(unsubscribe)
    assert _statuses(config, engine)["ana@example.org"] == "active"  # opening is not enough
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert _statuses(config, engine)["ana@example.org"] == "unsubscribed"


@pytest.mark.parametrize("width", WIDTHS)
def test_email_archive_and_forms_fit_the_screen(browser, live, tmp_path, width):
    url, config, _, edition_id = live
    (message, *_) = [
        m for m in _messages(config.outbox_dir / "email" / edition_id) if "john@" in str(m["To"])
    ]
    html = message.get_body(("html",)).get_content()
    shutil.copy(config.root / "static" / "eu-emblem.png", tmp_path / "eu-emblem.png")
    (tmp_path / "email.html").write_text(html.replace("cid:emblem-eu@bulletin", "eu-emblem.png"))
    page = browser.new_page(viewport={"width": width, "height": 900})
    shots = {
        "email": (tmp_path / "email.html").as_uri(),
        "archive": url,
        "edition": f"{url}{edition_id}/",
        "subscribe": url + "subscribe",
    }
    for name, address in shots.items():
        page.goto(address)
        page.wait_for_load_state("load")
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
        assert _fits(page), f"{name} overflows horizontally at {width} px"
        assert (tmp_path / f"{name}-{width}.png").stat().st_size > 1000
