"""The subscriber web service over HTTP: every route, every bad token and bad form input."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from starlette.testclient import TestClient

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.pipeline.report import Report
from bulletin.store.database import connect, deliveries, subscribers, suppressions
from bulletin.store.subscribers import export_csv, import_csv
from bulletin.tokens import Signer, secret_key
from bulletin.web.app import create_app
from bulletin.web.security import RateLimit

BASE = "https://news.example.org"
FIRST, SECOND = "2019-11-13-sofia-workshop", "2019-12-05-curs-regional"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


class Web:
    """The fixture site, its database and the app, driven as a browser would."""

    def __init__(self, site: Path, *, events: bool = True, **limits) -> None:
        self.site = site
        if events:  # a second list to choose from
            text = (site / "bulletin.toml").read_text()
            (site / "bulletin.toml").write_text(
                text + '\n[lists.events]\nname = "Fixture Events"\n'
            )
        self.config = load_config(site)
        self.engine = connect(self.config.database_url)
        self.signer = Signer(secret_key(self.config.state_dir))
        self.clock = Clock()
        app = create_app(
            self.config, self.engine, secret_key(self.config.state_dir), clock=self.clock, **limits
        )
        self.client = TestClient(app, base_url=BASE, follow_redirects=False)

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    def hidden(self, path: str) -> dict[str, str]:
        """The hidden fields of the page's first form, as a browser would post them."""
        page = self.client.get(path).text
        return dict(re.findall(r'type="hidden" name="(csrf|consent)" value="([^"]+)"', page))

    def subscribe(self, address: str, lists=("news",), language="en", **extra):
        data = {**self.hidden("/subscribe"), "email": address, "language": language}
        return self.client.post("/subscribe", data={**data, "lists": list(lists), **extra})

    def statuses(self) -> dict[str, str]:
        rows = export_csv(self.engine, self.config, "news").splitlines()[1:]
        return {r.split(",")[0]: r.split(",")[3] for r in rows}

    def confirmations(self) -> list[email.message.EmailMessage]:
        files = sorted((self.site / "outbox" / "email" / "confirmations").glob("*.eml"))
        return [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
        ]

    def confirmation_path(self, message: email.message.EmailMessage) -> str:
        text = message.get_body(("plain",)).get_content()
        url = re.search(r"https://news\.example\.org/confirm/\S+", text).group(0)
        return url.removeprefix(BASE)

    def import_subscribers(self) -> None:
        report = import_csv(self.engine, self.config, self.site / "subscribers.csv", "news")
        assert report.problems == []

    def publish(self, *slugs: str) -> Report:
        """A publish as the flow runs it, into the outbox and public/; its report."""
        result = core.publish(self.site, slugs, steps=core.Steps(engine=self.engine))
        assert result.ended is core.Ended.COMPLETED, result.message
        return result.report

    def emails_to(self, address: str, edition: str) -> list[email.message.EmailMessage]:
        files = sorted((self.site / "outbox" / "email" / edition).glob("*.eml"))
        found = [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
        ]
        return [m for m in found if address in str(m["To"])]

    def everything_stored(self) -> str:
        with self.engine.connect() as db:
            return "\n".join(
                repr(row)
                for table in (subscribers, deliveries, suppressions)
                for row in db.execute(sa.select(table))
            )


@pytest.fixture
def web(site: Path) -> Web:
    return Web(site)


def _unsubscribe_path(message: email.message.EmailMessage) -> str:
    https = str(message["List-Unsubscribe"]).split(",")[0].strip(" <>")
    return https.removeprefix(BASE)


# --- subscribe and confirm -----------------------------------------------------------------


def test_subscribing_sends_a_confirmation_and_only_confirming_makes_the_address_active(web):
    answer = web.subscribe("New.Reader@Example.ORG", language="ro")
    assert answer.status_code == 200
    assert "Verificați-vă căsuța de email" in answer.text
    assert web.statuses() == {"New.Reader@example.org": "pending"}
    (message,) = web.confirmations()
    assert message["To"] == "New.Reader@example.org"
    assert message["Subject"] == "Confirmați abonarea la Fixture News"
    text = message.get_body(("plain",)).get_content()
    assert "Acest proiect este finanțat de Uniunea Europeană." in text
    html = message.get_body(("html",)).get_content()
    assert 'src="cid:emblem-eu@bulletin"' in html
    link = web.confirmation_path(message)

    page = web.client.get(link)  # what a mail scanner does: nothing changes
    assert page.status_code == 200 and "Confirmă abonarea" in page.text
    assert web.statuses() == {"New.Reader@example.org": "pending"}

    done = web.client.post(link, data={"csrf": web.csrf(link)})
    assert done.status_code == 200 and "Sunteți abonat" in done.text
    assert web.statuses() == {"New.Reader@example.org": "active"}
    preferences = re.search(r'href="\.\./(preferences/[^"]+)"', done.text).group(1)
    assert web.client.get("/" + preferences).status_code == 200


def test_subscribe_answers_alike_for_new_pending_and_subscribed_addresses(web):
    web.import_subscribers()  # ana@example.org is active
    answers = [
        web.subscribe("someone.new@example.org"),
        web.subscribe("someone.new@example.org"),  # now pending
        web.subscribe("ana@example.org"),  # already subscribed
    ]

    def shown(response) -> str:
        return re.sub(r'name="csrf" value="[^"]+"', "", response.text)

    assert {a.status_code for a in answers} == {200}
    assert shown(answers[0]) == shown(answers[1]) == shown(answers[2])
    assert len(web.confirmations()) == 3
    assert web.statuses()["ana@example.org"] == "active"
    assert web.statuses()["someone.new@example.org"] == "pending"


def test_a_pending_address_gets_no_edition_and_a_confirmed_one_does(web):
    web.import_subscribers()
    web.subscribe("waiting@example.org")
    edition = web.publish(FIRST)
    assert web.emails_to("waiting@example.org", edition.edition) == []
    assert web.emails_to("ana@example.org", edition.edition)

    link = web.confirmation_path(web.confirmations()[0])
    web.client.post(link, data={"csrf": web.csrf(link)})
    second = web.publish(SECOND)
    assert len(web.emails_to("waiting@example.org", second.edition)) == 1


@pytest.mark.parametrize(
    ("form", "status", "shown"),
    [
        ({"email": "not-an-address"}, 400, "Enter a valid email address"),
        ({"email": "a@b"}, 400, "Enter a valid email address"),
        ({"email": ""}, 400, "Enter a valid email address"),
        ({"lists": []}, 400, "Choose at least one list"),
        ({"lists": ["desk"]}, 400, "Choose at least one list"),  # external: not joinable
        ({"lists": ["nonexistent"]}, 400, "Choose at least one list"),
        ({"language": "xx"}, 400, "Choose a language from the list"),
        ({"csrf": ""}, 403, "The form has expired or came from another site"),
        ({"csrf": "Y3NyZgpmb3JnZWQ.AAAA"}, 403, "The form has expired or came from another site"),
    ],
)
def test_bad_subscribe_forms_are_refused_and_record_nothing(web, form, status, shown):
    data = {
        **web.hidden("/subscribe"),
        "email": "reader@example.org",
        "language": "en",
        "lists": ["news"],
        **form,
    }
    answer = web.client.post("/subscribe", data=data)
    assert answer.status_code == status
    assert shown in answer.text
    assert web.statuses() == {}
    assert web.confirmations() == []


def test_a_form_posted_from_another_site_is_refused(web):
    csrf = web.csrf("/subscribe")
    data = {"csrf": csrf, "email": "reader@example.org", "language": "en", "lists": "news"}
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        assert web.client.post("/subscribe", data=data, headers=headers).status_code == 403
    web.client.cookies.clear()  # the token belongs to another browser's cookie
    assert web.client.post("/subscribe", data=data).status_code == 403
    assert web.statuses() == {}


def test_a_site_with_one_list_needs_no_list_chosen(site):
    web = Web(site, events=False)
    page = web.client.get("/subscribe")
    assert 'name="lists"' not in page.text
    assert web.subscribe("solo@example.org", lists=()).status_code == 200
    assert web.statuses() == {"solo@example.org": "pending"}


def test_subscribe_is_rate_limited_per_client_and_per_address(site):
    web = Web(site, per_client=RateLimit(3, 600), per_address=RateLimit(2, 3600))
    assert web.subscribe("one@example.org").status_code == 200
    assert web.subscribe("ONE@example.org").status_code == 200
    limited = web.subscribe("one@example.org")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3600"
    assert web.subscribe("two@example.org").status_code == 429  # the client's 4th attempt
    assert len(web.confirmations()) == 2


# --- unsubscribe ---------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_answers_200_and_the_next_publish_skips_the_address(web, encoding):
    web.import_subscribers()
    first = web.publish(FIRST)
    (message,) = web.emails_to("ana@example.org", first.edition)
    path = _unsubscribe_path(message)
    bare = TestClient(web.client.app, base_url=BASE, follow_redirects=False)  # no cookie
    if encoding == "urlencoded":
        answer = bare.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    else:
        answer = bare.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert answer.status_code == 200
    assert "You are unsubscribed" in answer.text
    assert web.statuses()["ana@example.org"] == "unsubscribed"

    second = web.publish(SECOND)
    assert web.emails_to("ana@example.org", second.edition) == []
    assert len(web.emails_to("john@example.com", second.edition)) == 1


def test_unsubscribing_while_an_edition_is_being_sent_skips_the_rest_of_it(web):
    web.import_subscribers()
    edition = core.plan(web.config, web.engine)
    core.record(web.engine, web.config, edition)  # recipients frozen, nothing sent yet
    token = web.signer.unsubscribe_token("news", "ana@example.org")
    web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    report = web.publish()  # the recorded edition is sent
    assert report.edition == edition.edition_id
    assert web.emails_to("ana@example.org", edition.edition_id) == []
    assert len(web.emails_to("john@example.com", edition.edition_id)) == 1
    assert report.per_list["news"]["skipped"] == 1


def test_opening_an_unsubscribe_link_shows_a_button_and_changes_nothing(web):
    web.import_subscribers()
    token = web.signer.unsubscribe_token("news", "ana@example.org")
    page = web.client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert web.client.head(f"/unsubscribe/{token}").status_code == 200
    assert web.statuses()["ana@example.org"] == "active"
    # the page's own button sends the one-click body
    web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert web.statuses()["ana@example.org"] == "unsubscribed"


def test_a_post_without_the_one_click_body_unsubscribes_nobody(web):
    web.import_subscribers()
    token = web.signer.unsubscribe_token("news", "ana@example.org")
    for body in ({}, {"List-Unsubscribe": "yes"}):
        assert web.client.post(f"/unsubscribe/{token}", data=body).status_code == 400
    assert web.statuses()["ana@example.org"] == "active"


def _altered(token: str) -> str:
    """The sealed token with one bit of its ciphertext flipped."""
    sealed = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    sealed[-3] ^= 0x04
    return base64.urlsafe_b64encode(bytes(sealed)).rstrip(b"=").decode()


def _bad_tokens(web: Web, purpose: str) -> dict[str, str]:
    other = Signer(SecretStr("another-site's-key"))
    when = web.clock.now + dt.timedelta(days=1)
    genuine = {
        "unsubscribe": web.signer.unsubscribe_token("news", "ana@example.org"),
        "confirm": web.signer.sign_expiring("confirm", when, "ana@example.org", "news", "en"),
        "preferences": web.signer.sign_expiring("preferences", when, "ana@example.org"),
    }
    foreign = {
        "unsubscribe": other.unsubscribe_token("news", "ana@example.org"),
        "confirm": other.sign_expiring("confirm", when, "ana@example.org", "news", "en"),
        "preferences": other.sign_expiring("preferences", when, "ana@example.org"),
    }
    wrong_purpose = genuine["preferences" if purpose != "preferences" else "unsubscribe"]
    return {
        "garbage": "not-a-token",
        "empty-mac": genuine[purpose].split(".")[0] + ".",
        "truncated": genuine[purpose][:-3],
        "altered": _altered(genuine[purpose]),
        "other-site": foreign[purpose],
        "other-purpose": wrong_purpose,
        "bad-base64": "%%%%.%%%%",
    }


@pytest.mark.parametrize("purpose", ["unsubscribe", "confirm", "preferences"])
@pytest.mark.parametrize(
    "kind",
    ["garbage", "empty-mac", "truncated", "altered", "other-site", "other-purpose", "bad-base64"],
)
def test_bad_tokens_get_400_and_change_nothing(web, purpose, kind):
    web.import_subscribers()
    before = web.everything_stored()
    token = _bad_tokens(web, purpose)[kind]
    csrf = web.csrf("/subscribe")
    bodies = {
        "unsubscribe": {"List-Unsubscribe": "One-Click"},
        "confirm": {"csrf": csrf},
        "preferences": {"csrf": csrf, "action": "erase", "confirm": "yes"},
    }
    assert web.client.get(f"/{purpose}/{token}").status_code == 400
    answer = web.client.post(f"/{purpose}/{token}", data=bodies[purpose])
    assert answer.status_code == 400
    assert "This link does not work" in answer.text
    assert web.everything_stored() == before


@pytest.mark.parametrize(("purpose", "days"), [("confirm", 3), ("preferences", 7)])
def test_links_expire(web, purpose, days):
    web.subscribe("late@example.org")
    if purpose == "confirm":
        path = web.confirmation_path(web.confirmations()[0])
    else:
        token = web.signer.sign_expiring(
            "preferences", web.clock.now + dt.timedelta(days=days), "late@example.org"
        )
        path = f"/preferences/{token}"
    assert web.client.get(path).status_code == 200
    web.clock.now += dt.timedelta(days=days, seconds=1)
    assert web.client.get(path).status_code == 400
    answer = web.client.post(path, data={"csrf": web.csrf("/subscribe"), "action": "save"})
    assert answer.status_code == 400
    assert web.statuses() == {"late@example.org": "pending"}


def test_unconfirmed_signups_are_deleted_once_their_link_expired(web):
    web.subscribe("never@example.org")
    web.clock.now += dt.timedelta(days=4)
    web.subscribe("later@example.org")
    assert web.statuses() == {"later@example.org": "pending"}


# --- preferences, export, erasure ----------------------------------------------------------


def _preferences(web: Web, address: str) -> str:
    token = web.signer.sign_expiring("preferences", web.clock.now + dt.timedelta(days=1), address)
    return f"/preferences/{token}"


def test_preferences_change_lists_and_language(web):
    web.import_subscribers()
    path = _preferences(web, "ana@example.org")
    page = web.client.get(path)
    assert 'value="news" checked' in page.text and 'value="events">' in page.text
    csrf = web.csrf(path)
    saved = web.client.post(
        path,
        data={**web.hidden(path), "action": "save", "lists": ["events"], "language": "ro"},
    )
    assert saved.status_code == 200 and "Preferințele au fost salvate." in saved.text
    assert 'value="events" checked' in saved.text
    assert web.statuses()["ana@example.org"] == "unsubscribed"
    events = export_csv(web.engine, web.config, "events")
    assert "ana@example.org,,ro,active" in events
    bad = web.client.post(path, data={"csrf": csrf, "action": "save", "language": "xx"})
    assert bad.status_code == 400


def test_a_subscriber_can_ask_for_a_preferences_link_and_strangers_learn_nothing(web):
    web.import_subscribers()

    def ask(address: str, **extra):
        data = {"csrf": web.csrf("/preferences"), "email": address, "language": "en", **extra}
        return web.client.post("/preferences", data=data)

    known, unknown = ask("ana@example.org"), ask("nobody@example.org")
    assert known.status_code == unknown.status_code == 200

    def shown(response) -> str:
        return re.sub(r'name="csrf" value="[^"]+"', "", response.text)

    assert shown(known) == shown(unknown)
    folder = web.site / "outbox" / "email" / "preferences"
    (message,) = [
        email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        for f in folder.glob("*.eml")
    ]
    assert message["To"] == "ana@example.org"
    text = message.get_body(("plain",)).get_content()
    assert "This project is funded by the European Union." in text
    link = re.search(r"https://news\.example\.org/preferences/\S+", text).group(0)
    page = web.client.get(link.removeprefix(BASE))
    assert page.status_code == 200 and 'value="news" checked' in page.text
    assert ask("not an address").status_code == 400
    assert ask("ana@example.org", csrf="forged").status_code == 403


def test_export_gives_the_subscribers_data_as_json(web):
    web.import_subscribers()
    edition = web.publish(FIRST)
    path = _preferences(web, "ana@example.org")
    answer = web.client.post(path, data={"csrf": web.csrf(path), "action": "export"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"].startswith("attachment")
    data = json.loads(answer.content)
    assert data["email"] == "ana@example.org"
    assert [(s["list"], s["status"], s["name"]) for s in data["subscriptions"]] == [
        ("news", "active", "Ana Popescu")
    ]
    assert data["deliveries"] == [
        {"edition": edition.edition, "list": "news", "status": "sent",
         "updated_at": data["deliveries"][0]["updated_at"]}
    ]  # fmt: skip


def test_erasure_forgets_the_address_and_nothing_is_sent_to_it_again(web):
    web.import_subscribers()
    first = web.publish(FIRST)
    # The next edition is recorded (recipients frozen) but not sent yet when ana erases.
    second = core.plan(web.config, web.engine)
    core.record(web.engine, web.config, second)
    path = _preferences(web, "ana@example.org")
    unticked = web.client.post(path, data={"csrf": web.csrf(path), "action": "erase"})
    assert unticked.status_code == 400
    assert "ana@example.org" in web.everything_stored()

    erased = web.client.post(
        path, data={"csrf": web.csrf(path), "action": "erase", "confirm": "yes"}
    )
    assert erased.status_code == 200 and "Your data is erased" in erased.text
    assert "ana@" not in web.everything_stored().lower()

    assert web.publish().edition == second.edition_id  # the recorded edition is sent
    assert web.emails_to("ana@example.org", second.edition_id) == []
    assert len(web.emails_to("john@example.com", second.edition_id)) == 1
    with web.engine.connect() as db:
        ledger = {
            (r.edition_id, r.status)
            for r in db.execute(
                sa.select(deliveries).where(deliveries.c.recipient.like("erased:%"))
            )
        }
    assert ledger == {(first.edition, "sent"), (second.edition_id, "skipped")}
    # Publishing again sends nothing to anyone: the ledger still knows the edition went out.
    again = core.plan(web.config, web.engine)
    assert again.edition_id is None


def test_the_key_can_come_from_a_prefect_secret_block(site, prefect_harness, monkeypatch):
    from prefect.blocks.system import Secret

    Secret(value="key-from-a-block").save("bulletin-site-key", overwrite=True)
    monkeypatch.delenv("BULLETIN_SECRET_KEY")
    monkeypatch.setenv("BULLETIN_SECRET_KEY_BLOCK", "bulletin-site-key")
    web = Web(site)
    assert secret_key(web.config.state_dir).get_secret_value() == "key-from-a-block"
    assert not (web.config.state_dir / "secret_key").exists()
    token = Signer(SecretStr("key-from-a-block")).unsubscribe_token("news", "ana@example.org")
    assert web.client.get(f"/unsubscribe/{token}").status_code == 200
    other = Signer(SecretStr("test-secret-key-not-for-production"))
    assert (
        web.client.get(f"/unsubscribe/{other.unsubscribe_token('news', 'a@b.org')}").status_code
        == 400
    )


# --- archive and feeds ---------------------------------------------------------------------


def test_archive_pages_and_feeds_are_served_with_their_types_and_caching(web):
    web.import_subscribers()
    edition = web.publish()
    cases = {
        "/": "text/html",
        f"/{edition.edition}/": "text/html",
        f"/entries/{FIRST}/": "text/html",
        "/feed.xml": "application/rss+xml",
        "/atom.xml": "application/atom+xml",
        "/feed.json": "application/feed+json",
        "/calendar.ics": "text/calendar",
        f"/entries/{FIRST}/event.ics": "text/calendar",
        "/static/eu-emblem.png": "image/png",
    }
    for path, kind in cases.items():
        answer = web.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].split(";")[0] == kind, path
        assert answer.headers["cache-control"].startswith("public, max-age="), path
        assert answer.headers["x-content-type-options"] == "nosniff"
        etag = answer.headers.get("etag")
        if path != "/static/eu-emblem.png":
            assert etag and answer.headers["last-modified"], path
            again = web.client.get(path, headers={"if-none-match": etag})
            assert again.status_code == 304 and again.content == b"", path
    assert "Fixture News" in web.client.get("/").text
    assert web.client.get(f"/{edition.edition}").status_code in (301, 307)


def test_a_page_rewritten_by_the_next_publish_is_served_new_at_once(web):
    web.import_subscribers()
    web.publish(FIRST)
    before = web.client.get("/")
    web.publish(SECOND)  # rewrites public/index.html
    after = web.client.get("/")
    assert after.text != before.text and SECOND in after.text
    assert after.headers["etag"] != before.headers["etag"]
    head = web.client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(after.content))


@pytest.mark.parametrize(
    "path", ["/preview/news/email.html", "/nothing-here", "/../bulletin.toml", "/.bulletin/x"]
)
def test_unpublished_and_missing_paths_are_404(web, path):
    web.import_subscribers()
    web.publish(FIRST)
    core.plan(web.config, web.engine, record=False)
    (web.config.public_dir / "preview" / "news").mkdir(parents=True)
    (web.config.public_dir / "preview" / "news" / "email.html").write_text("next edition")
    answer = web.client.get(path)
    assert answer.status_code == 404
    assert "next edition" not in answer.text


def test_the_archive_before_anything_was_built_is_a_404_page_not_a_crash(web):
    answer = web.client.get("/")
    assert answer.status_code == 404
    assert "Nothing has been published yet." in answer.text


@pytest.mark.parametrize("path", ["/subscribe", "/", "/feed.xml"])
def test_every_answer_carries_the_security_headers(web, path):
    web.import_subscribers()
    web.publish(FIRST)
    headers = web.client.get(path).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src" not in headers["content-security-policy"]  # default-src 'none'
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.parametrize("language", ["en", "ro"])
def test_pages_speak_the_asked_language_and_show_the_eu_notice(web, language):
    page = web.client.get(f"/subscribe?lang={language}")
    assert f'<html lang="{language}" dir="auto">' in page.text
    texts = web.config.funding["eu"].text[language]
    assert texts.statement in page.text
    assert texts.disclaimer.replace("'", "&#39;") in page.text
    assert 'src="static/eu-emblem.png"' in page.text
    assert '<label class="field" for="email">' in page.text
    assert web.client.get(
        "/subscribe", headers={"accept-language": f"{language};q=0.9"}
    ).text.startswith(f'<!doctype html>\n<html lang="{language}" dir="auto">')


def test_an_oversized_form_is_refused(web):
    answer = web.client.post(
        "/subscribe",
        content=b"email=" + b"a" * 20_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
