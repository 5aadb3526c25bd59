"""Every email bulletin sends is built to one policy: the failure notice and the web service's
emails carry the same sender headers as editions, and are DKIM-signed when the site signs."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from starlette.testclient import TestClient

from bulletin.config import load_config
from bulletin.content.entries import load_entries
from bulletin.mail.compiled import CompiledEmail
from bulletin.mail.notify import failure_notice
from bulletin.render.renderer import Renderer
from bulletin.store.database import connect
from bulletin.web.app import create_app
from tests.test_dkim import DOMAIN, KEY_ENV, SELECTOR, _configure, _dnsfunc, _pem

NOTIFY = "comms@example.org"
BASE = "https://news.example.org"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _notify(site: Path) -> None:
    path = site / "bulletin.toml"
    text = path.read_text()
    path.write_text(
        text.replace("[lists.news]", f'[delivery]\nnotify = "{NOTIFY}"\n\n[lists.news]')
    )


def _sign(site: Path, key: rsa.RSAPrivateKey, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, _pem(key).decode())
    _configure(site, f'domain = "{DOMAIN}"\nselector = "{SELECTOR}"\nprivate_key_env = "{KEY_ENV}"')


def _parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def _confirmation(site: Path) -> bytes:
    """Sign up through the web service; the confirmation email as it lands in the outbox."""
    config = load_config(site)
    clock = lambda: dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)  # noqa: E731
    app = create_app(config, connect(config.database_url), SecretStr("k" * 32), clock=clock)
    client = TestClient(app, base_url=BASE, follow_redirects=False)
    page = client.get("/subscribe")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    consent = re.search(r'name="consent" value="([^"]+)"', page.text).group(1)
    form = {"csrf": csrf, "consent": consent, "email": "ana@example.org", "language": "ro",
            "lists": ["news"]}  # fmt: skip
    assert client.post("/subscribe", data=form).status_code == 200
    (path,) = (site / "outbox" / "email" / "confirmations").glob("*.eml")
    return path.read_bytes()


def test_failure_notice_is_dkim_signed_when_the_site_signs(site, key, monkeypatch):
    _notify(site)
    _sign(site, key, monkeypatch)
    message = failure_notice(load_config(site), "2019-11-20-1", "it broke", "# Report\n")
    assert message.data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(message.data, dnsfunc=_dnsfunc(key))
    tampered = message.data.replace(b"it broke", b"all fine")
    assert not dkim.verify(tampered, dnsfunc=_dnsfunc(key))
    parsed = _parsed(message.data)
    assert parsed["To"] == NOTIFY and "publish failed: it broke" in parsed["Subject"]
    assert "Reply-To" not in parsed  # it goes to the site's own people
    assert message.recipient == NOTIFY and message.message_id == parsed["Message-ID"]


def test_failure_notice_is_unsigned_when_the_site_does_not_sign(site):
    _notify(site)
    message = failure_notice(load_config(site), None, "it broke", "# Report\n")
    assert b"DKIM-Signature" not in message.data
    assert "Edition: (none)" in _parsed(message.data).get_content()


def test_failure_notice_still_goes_out_when_the_dkim_key_is_what_failed(site, key, monkeypatch):
    _notify(site)
    _sign(site, key, monkeypatch)
    config = load_config(site)
    monkeypatch.delenv(KEY_ENV)  # gone since the run started
    message = failure_notice(config, "2019-11-20-1", "no DKIM key", "# Report\n")
    assert b"DKIM-Signature" not in message.data
    assert "no DKIM key" in _parsed(message.data)["Subject"]


def test_web_confirmation_email_is_dkim_signed_and_carries_the_emblem_inline(
    site, key, monkeypatch
):
    _sign(site, key, monkeypatch)
    data = _confirmation(site)
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=_dnsfunc(key))
    assert not dkim.verify(data.replace(b"confirm/", b"confirm/x", 1), dnsfunc=_dnsfunc(key))
    parsed = _parsed(data)
    html = parsed.get_body(("html",)).get_content()
    (image,) = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert 'lang="ro"' in html  # the notice in the reader's language


def test_web_confirmation_email_is_unsigned_when_the_site_does_not_sign(site):
    assert b"DKIM-Signature" not in _confirmation(site)


def test_every_email_carries_the_same_sender_headers(site):
    _notify(site)
    config = load_config(site)
    entries = load_entries(config).entries
    rendered = Renderer(config).email(entries, "2019-11-20-1", config.lists["news"].name)
    compiled = CompiledEmail(config, rendered, "2019-11-20-1", "news", config.lists["news"])
    when = dt.datetime(2019, 11, 20, 9, 0, tzinfo=dt.UTC)
    edition = compiled.personalise("ana@example.org", "tok", when)
    notice = failure_notice(config, "2019-11-20-1", "it broke", "# Report\n")
    confirmation = _parsed(_confirmation(site))
    messages = [_parsed(edition.data), _parsed(notice.data), confirmation]
    for parsed in messages:
        assert parsed["From"] == "Fixture Communications <news@example.org>"
        assert parsed["Auto-Submitted"] == "auto-generated"
        assert parsed["MIME-Version"] == "1.0"
        assert parsed["Message-ID"].endswith("@example.org>")
    assert edition.sender == notice.sender == "news@example.org"
    assert _parsed(edition.data)["Reply-To"] == confirmation["Reply-To"] == "press@example.org"
