"""The web service and subscriber data tried as an attacker would (security review, issue
findings 2-4 and 10-14), and the proof of consent (GDPR art. 7(1)). Each test reproduces
the attack and shows it no longer gets through.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import html
import io
import json
import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bulletin import pipeline as core
from bulletin.config import load_config
from bulletin.mail.builder import MAX_LINE, to_field
from bulletin.store.database import consent_texts, consents, deliveries, subscribers
from bulletin.store.subscribers import export_csv, import_csv
from bulletin.tokens import Signer, secret_key
from bulletin.web.security import RateLimit
from tests.conftest import run_cli
from tests.test_web import FIRST, Web, _unsubscribe_path
from tests.web_server import serving


@pytest.fixture
def web(site: Path) -> Web:
    return Web(site)


def _outbox(site: Path, folder: str) -> list[email.message.EmailMessage]:
    files = sorted((site / "outbox" / "email" / folder).glob("*.eml"))
    return [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]


def _confirm(web: Web, link: str):
    return web.client.post(link, data={"csrf": web.csrf("/subscribe")})


def _preferences_path(web: Web, address: str) -> str:
    when = web.clock.now + dt.timedelta(days=1)
    return "/preferences/" + web.signer.sign_expiring("preferences", when, address)


# --- 2. An unsubscribe link unsubscribes, and grants nothing else ----------------------------


def test_an_unsubscribe_link_grants_no_access_to_the_preferences(web):
    web.import_subscribers()
    edition = web.publish(FIRST)
    (message,) = web.emails_to("ana@example.org", edition.edition)
    path = _unsubscribe_path(message)
    page = web.client.get(path)
    done = web.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    for answer in (page, done):  # no preferences token, no export, no erasure from here
        assert not re.search(r"preferences/[A-Za-z0-9_-]{20,}", answer.text)
        assert 'name="action"' not in answer.text
    # What it offers instead: a preferences link sent to the address itself.
    assert 'action="../preferences"' in done.text
    form = dict(re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', done.text))
    assert form["email"] == "ana@example.org"
    sent = web.client.post("/preferences", data=form)
    assert sent.status_code == 200
    (link,) = _outbox(web.site, "preferences")
    assert link["To"] == "ana@example.org"
    assert 'href="../preferences/' not in sent.text


# --- 3. Confirmation links work once and never revive an address -----------------------------


def test_a_confirmation_link_works_once(web):
    web.subscribe("once@example.org")
    link = web.confirmation_path(web.confirmations()[0])
    assert _confirm(web, link).status_code == 200
    assert web.statuses() == {"once@example.org": "active"}
    assert web.client.get(link).status_code == 400
    again = _confirm(web, link)
    assert again.status_code == 400 and "This link does not work" in again.text


@pytest.mark.parametrize("leaves_by", ["unsubscribe", "preferences", "erasure"])
def test_an_old_confirmation_link_does_not_undo_leaving_or_erasure(web, leaves_by):
    web.import_subscribers()  # ana is active on news
    web.subscribe("ana@example.org")  # someone signs her up again: a link she may not use
    link = web.confirmation_path(web.confirmations()[0])
    if leaves_by == "unsubscribe":
        token = web.signer.unsubscribe_token("news", "ana@example.org")
        web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    else:
        path = _preferences_path(web, "ana@example.org")
        data = {**web.hidden(path), "language": "ro"}
        if leaves_by == "preferences":
            web.client.post(path, data={**data, "action": "save", "lists": []})
        else:
            web.client.post(path, data={**data, "action": "erase", "confirm": "yes"})
    before = web.statuses()
    assert before.get("ana@example.org") in ("unsubscribed", None)
    web.clock.now += dt.timedelta(hours=1)
    assert web.client.get(link).status_code == 400
    assert _confirm(web, link).status_code == 400
    assert web.statuses() == before
    if leaves_by == "erasure":
        assert "ana@example.org" not in web.everything_stored()


def test_an_old_confirmation_link_in_another_spelling_does_not_undo_an_unsubscribe(web):
    web.import_subscribers()  # stored as ana@example.org
    web.subscribe("Ana@example.org")  # the same mailbox, spelt otherwise
    link = web.confirmation_path(web.confirmations()[0])
    token = web.signer.unsubscribe_token("news", "ana@example.org")
    web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert _confirm(web, link).status_code == 400
    assert web.statuses()["ana@example.org"] == "unsubscribed"


# --- 4. CSV formula injection -----------------------------------------------------------------

FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", '=HYPERLINK("https://evil.example")']


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_export_escapes_formulas_planted_by_web_sign_up_and_import(web):
    planted = "=cmd|'/Ccalc'!A0@evil.example"  # email-validator takes it
    assert web.subscribe(planted).status_code == 200
    rows = [(f"x{i}@example.org", name, "en") for i, name in enumerate(FORMULAS)]
    out = io.StringIO()
    csv.writer(out).writerows([("email", "name", "language"), *rows, ("t@b.org", "\t=1+1", "en")])
    (web.site / "formulas.csv").write_text(out.getvalue())
    report = import_csv(web.engine, web.config, web.site / "formulas.csv", "news")
    assert report.problems == []
    exported = export_csv(web.engine, web.config, "news")
    cells = _cells(exported)
    assert f"'{planted}" in cells
    for name in [*FORMULAS, "=1+1"]:
        assert f"'{name}" in cells
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    assert not [c for c in cells if c.startswith(dangerous)], exported
    # Exported and imported again, every name and address is as it was.
    (web.site / "again.csv").write_text(exported)
    again = import_csv(web.engine, web.config, web.site / "again.csv", "news")
    assert again.problems == [] and again.added == 0
    assert export_csv(web.engine, web.config, "news") == exported


def test_the_export_command_escapes_and_the_consent_export_too(site):
    (site / "formulas.csv").write_text('email,name,language\nx@example.org,"@SUM(1)",en\n')
    assert run_cli("subscribers", "import", "formulas.csv", "--list", "news", "--by", "=evil",
                   site=site).returncode == 0  # fmt: skip
    plain = run_cli("subscribers", "export", "--list", "news", site=site)
    consent = run_cli("subscribers", "export", "--list", "news", "--consent", site=site)
    assert "'@SUM(1)" in _cells(plain.stdout)
    assert "'=evil" in _cells(consent.stdout)
    for out in (plain.stdout, consent.stdout):
        assert not [c for c in _cells(out) if c.startswith(("=", "+", "-", "@"))]


# --- 10. Names: capped and cleaned; To: within RFC 5322 ---------------------------------------


def test_import_refuses_overlong_names_and_strips_control_characters(web):
    long_name = "A" * 5000
    (web.site / "names.csv").write_text(
        "email,name,language\n"
        f"long@example.org,{long_name},en\n"
        'nul@example.org,"Nul\x00 Byte\x0bVertical\x1b[31m Esc\u202eevil",en\n'
    )
    report = import_csv(web.engine, web.config, web.site / "names.csv", "news")
    assert [(p.line, p.code) for p in report.problems] == [(2, "name-too-long")]
    assert "5000 characters" in report.problems[0].message
    with web.engine.connect() as db:
        names = dict(db.execute(sa.select(subscribers.c.email, subscribers.c.name)).all())
    assert names == {"nul@example.org": "Nul Byte Vertical [31m Esc evil"}


def test_a_long_name_never_makes_an_overlong_to_line(web):
    with web.engine.begin() as db:  # a name that did not come through import (SQLite keeps it)
        db.execute(
            subscribers.insert().values(
                list_name="news", email="long@example.org", name="Ω\x00" * 2500, language="en",
                status="active", created_at=web.clock.now, updated_at=web.clock.now,
            )
        )  # fmt: skip
    edition = web.publish(FIRST)
    (path,) = (web.site / "outbox" / "email" / edition.edition).glob("news-*.eml")
    raw = path.read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= MAX_LINE
    assert b"\x00" not in head
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"].addresses[0].addr_spec == "long@example.org"
    assert len(("To: " + to_field("x" * 5000, "a@b.org")).encode()) <= MAX_LINE


# --- 11. External lists: no one-click link that cannot work -----------------------------------


def test_external_lists_carry_no_one_click_and_their_link_changes_nothing(web):
    web.import_subscribers()
    edition = core.plan(web.config, web.engine)
    core.record(web.engine, web.config, edition)  # the desk's delivery is pending
    token = web.signer.unsubscribe_token("desk", "desk@lists.example.org")
    page = web.client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and "cannot take you off it" in page.text
    assert "desk@lists.example.org" in page.text and 'value="One-Click"' not in page.text
    click = web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert click.status_code == 400
    assert "will no longer receive" not in click.text and "nothing was changed" in click.text
    report = web.publish()  # the recorded edition still goes to the list server
    assert report.edition == edition.edition_id
    (message,) = [m for m in _outbox(web.site, edition.edition_id) if "desk@" in str(m["To"])]
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    (ana,) = web.emails_to("ana@example.org", edition.edition_id)
    assert ana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- 12. Separate per-address limits for sign-ups and preference links ------------------------


def test_sign_ups_for_an_address_do_not_lock_its_owner_out_of_preferences(site):
    web = Web(site, per_address=RateLimit(3, 3600), per_client=RateLimit(100, 600))
    web.import_subscribers()
    for _ in range(3):
        assert web.subscribe("ana@example.org").status_code == 200
    assert web.subscribe("ana@example.org").status_code == 429
    data = {"csrf": web.csrf("/preferences"), "email": "ana@example.org", "language": "en"}
    assert web.client.post("/preferences", data=data).status_code == 200
    assert len(_outbox(site, "preferences")) == 1


# --- 13. Redirects from [site] url, never from Host --------------------------------------------


def test_redirects_point_to_the_site_url_whatever_the_host_header(site):
    web = Web(site)
    web.import_subscribers()
    edition = web.publish(FIRST)
    web.engine.dispose()
    with serving(site) as (url, _):
        for path in (f"{edition.edition}", f"entries/{FIRST}"):
            answer = httpx.get(url + path, headers={"host": "evil.example"})
            assert answer.status_code in (301, 307, 308), path
            location = answer.headers["location"]
            assert location.startswith("https://news.example.org/"), location
            assert "evil.example" not in location


# --- 14. Tokens are opaque and never logged ---------------------------------------------------


def _decoded(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def test_tokens_carry_no_readable_address_or_list(web):
    web.import_subscribers()
    edition = web.publish(FIRST)
    (message,) = web.emails_to("ana@example.org", edition.edition)
    web.subscribe("new.reader@example.org")
    confirm = web.confirmation_path(web.confirmations()[0]).rpartition("/")[2]
    unsubscribe = _unsubscribe_path(message).rpartition("/")[2]
    preferences = _preferences_path(web, "ana@example.org").rpartition("/")[2]
    for token in (unsubscribe, confirm, preferences):
        for secret in (b"ana", b"new.reader", b"example.org", b"news", b"unsubscribe"):
            assert secret not in _decoded(token), token
            assert secret.decode() not in token
    assert web.signer.verify("unsubscribe", unsubscribe) == ["news", "ana@example.org"]


def _legacy(key: str, *fields: str) -> str:
    """A token as bulletin made them before they were sealed: base64 payload, HMAC."""
    payload = "\n".join(fields).encode()
    mac = hmac.new(key.encode(), payload, hashlib.sha256).digest()[:20]
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return f"{b64(payload)}.{b64(mac)}"


def test_unsubscribe_links_of_emails_sent_before_still_work_and_nothing_else_old_does(web):
    web.import_subscribers()
    key = secret_key(web.config.state_dir).get_secret_value()
    old = _legacy(key, "unsubscribe", "news", "ana@example.org")
    assert (
        web.client.post(f"/unsubscribe/{old}", data={"List-Unsubscribe": "One-Click"}).status_code
        == 200
    )
    assert web.statuses()["ana@example.org"] == "unsubscribed"
    expires = str(int((web.clock.now + dt.timedelta(days=1)).timestamp()))
    old_preferences = _legacy(key, "preferences", expires, "john@example.com")
    assert web.client.get(f"/preferences/{old_preferences}").status_code == 400


@pytest.mark.parametrize(
    "shape",
    ["/unsubscribe//{t}", "/UNSUBSCRIBE/{t}", "/%75nsubscribe/{t}", "/{t}", "/x/confirm/{t}",
     "/preferences/{t}/more", "/unsubscribe/{t}?utm=1", "//unsubscribe/{t}"],
)  # fmt: skip
def test_tokens_stay_out_of_the_access_log_in_any_path_shape(site, shape):
    config = load_config(site)
    token = Signer(secret_key(config.state_dir)).unsubscribe_token("news", "ana@example.org")
    with serving(site) as (url, log):
        answer = httpx.get(url.rstrip("/") + shape.format(t=token))
        assert answer.status_code in (200, 400, 404)
    written = log.read_text()
    assert "GET /" in written
    assert token not in written and token[:16] not in written


# --- Proof of consent (GDPR art. 7(1)) ----------------------------------------------------------


def test_a_web_sign_up_keeps_how_when_and_under_which_text_consent_was_given(web):
    form = web.client.get("/subscribe?lang=ro").text
    shown = html.unescape(re.search(r'<p class="consent">(.*?)</p>', form, re.S).group(1))
    assert shown.startswith("Prin abonare")
    asked = web.clock.now
    data = {**web.hidden("/subscribe?lang=ro"), "email": "reader@example.org", "language": "ro"}
    assert (
        web.client.post("/subscribe", data={**data, "lists": ["news", "events"]}).status_code == 200
    )
    web.clock.now += dt.timedelta(hours=5)
    _confirm(web, web.confirmation_path(web.confirmations()[0]))
    path = _preferences_path(web, "reader@example.org")
    exported = web.client.post(path, data={"csrf": web.csrf(path), "action": "export"})
    records = json.loads(exported.content)["consents"]
    assert [(r["list"], r["method"], r["source"]) for r in records] == [
        ("events", "web-form", "/subscribe"), ("news", "web-form", "/subscribe"),
    ]  # fmt: skip
    for record in records:
        assert dt.datetime.fromisoformat(record["asked_at"]) == asked
        assert dt.datetime.fromisoformat(record["confirmed_at"]) == web.clock.now
        assert record["consent_text"] == shown
        assert record["consent_text_sha256"] == hashlib.sha256(shown.encode()).hexdigest()
        assert record["withdrawn_at"] is None


def test_a_form_posted_with_an_outdated_consent_text_is_refused(web):
    data = {**web.hidden("/subscribe"), "email": "reader@example.org", "language": "en"}
    data["consent"] = hashlib.sha256(b"an older text").hexdigest()
    assert web.client.post("/subscribe", data={**data, "lists": ["news"]}).status_code == 400
    assert web.statuses() == {}


def test_each_version_of_the_consent_text_is_kept(site):
    first = Web(site)
    first.subscribe("one@example.org")
    custom = site / "templates" / "web" / "consent"
    custom.mkdir(parents=True)
    (custom / "en.txt.j2").write_text("I agree to receive {{ site.title }}, version 2.")
    second = Web(site, events=False)
    second.subscribe("two@example.org")
    with second.engine.connect() as db:
        texts = dict(db.execute(sa.select(consent_texts.c.sha256, consent_texts.c.text)).all())
        used = dict(db.execute(sa.select(consents.c.email, consents.c.text_sha256)).all())
    assert texts[used["two@example.org"]] == "I agree to receive Fixture News, version 2."
    assert texts[used["one@example.org"]].startswith("By subscribing, I agree")


def test_import_consent_names_the_file_row_and_who_imported(site):
    result = run_cli("subscribers", "import", "subscribers.csv", "--list", "news",
                     "--by", "Press Office", site=site)  # fmt: skip
    assert result.returncode == 0, result.stderr
    exported = run_cli("subscribers", "export", "--list", "news", "--consent", site=site)
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    digest = hashlib.sha256((site / "subscribers.csv").read_bytes()).hexdigest()
    fields = ("email", "method", "source", "source_line", "made_by")
    assert [tuple(r[f] for f in fields) for r in rows] == [
        ("ana@example.org", "import", "subscribers.csv", "2", "Press Office"),
        ("john@example.com", "import", "subscribers.csv", "3", "Press Office"),
    ]  # fmt: skip
    assert {r["source_sha256"] for r in rows} == {digest}
    assert all(r["confirmed_at"] and not r["withdrawn_at"] for r in rows)


def test_unsubscribing_records_the_withdrawal(web):
    web.import_subscribers()
    token = web.signer.unsubscribe_token("news", "ana@example.org")
    web.client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    rows = list(csv.DictReader(io.StringIO(_consent_export(web))))
    (ana,) = [r for r in rows if r["email"] == "ana@example.org"]
    assert ana["withdrawn_how"] == "unsubscribe" and ana["withdrawn_at"]


def _consent_export(web: Web) -> str:
    from bulletin.store import consent

    return consent.export_csv(web.engine, "news")


def test_erasure_keeps_the_proof_of_consent_and_nothing_else(web):
    web.subscribe("gone@example.org")
    _confirm(web, web.confirmation_path(web.confirmations()[0]))
    web.subscribe("gone@example.org", lists=("events",))  # asked, never confirmed
    web.publish(FIRST)
    path = _preferences_path(web, "gone@example.org")
    erased = web.client.post(
        path, data={"csrf": web.csrf(path), "action": "erase", "confirm": "yes"}
    )
    assert erased.status_code == 200
    with web.engine.connect() as db:
        kept = [dict(r._mapping) for r in db.execute(sa.select(consents))]
        sent = db.execute(sa.select(deliveries.c.recipient)).scalars().all()
    assert "gone@" not in repr(kept).lower() and "gone@" not in " ".join(sent)
    (record,) = kept  # the unconfirmed request went: there was no consent to prove
    stand_in = "erased:" + web.signer.keyed_hash("erased", "gone@example.org")
    assert record["email"] == stand_in and stand_in in sent
    assert (record["list_name"], record["method"], record["language"]) == ("news", "web-form", "")
    assert record["confirmed_at"] and record["text_sha256"]
    assert record["withdrawn_how"] == "erasure" and record["withdrawn_at"]
    assert f"{stand_in},news,web-form" in _consent_export(web)
