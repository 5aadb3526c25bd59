"""`bulletin serve` as a user starts it: the secret key rule, dev mode, and a clean access log."""

from __future__ import annotations

import stat

import httpx

from bulletin.config import load_config
from bulletin.tokens import Signer, secret_key
from tests.conftest import run_cli
from tests.web_server import free_port, serving


def test_serve_refuses_to_start_without_the_sites_secret_key(site):
    result = run_cli(
        "serve", "--port", str(free_port()), site=site, env={"BULLETIN_SECRET_KEY": ""}
    )
    assert result.returncode == 2
    assert "BULLETIN_SECRET_KEY" in result.stderr and "--dev" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (site / ".bulletin" / "secret_key").exists()


def test_dev_mode_says_so_and_creates_the_key_publish_will_use(site):
    with serving(site, "--dev", env={"BULLETIN_SECRET_KEY": ""}) as (url, log):
        assert httpx.get(url + "subscribe").status_code == 200
    assert "DEVELOPMENT MODE" in log.read_text()
    key_file = site / ".bulletin" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_serve_uses_the_key_file_publish_created_without_dev_mode(site, monkeypatch):
    monkeypatch.delenv("BULLETIN_SECRET_KEY")
    key = secret_key(site / ".bulletin")  # what the first publish does without the variable
    token = Signer(key).unsubscribe_token("news", "ana@example.org")
    with serving(site, env={"BULLETIN_SECRET_KEY": ""}) as (url, log):
        assert httpx.get(f"{url}unsubscribe/{token}").status_code == 200
    assert "DEVELOPMENT MODE" not in log.read_text()


def test_the_access_log_shows_no_token_and_no_address(site):
    config = load_config(site)
    token = Signer(secret_key(config.state_dir)).unsubscribe_token("news", "ana@example.org")
    with serving(site) as (url, log):
        page = httpx.get(f"{url}unsubscribe/{token}?utm=x")
        done = httpx.post(
            f"{url}unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        forged = httpx.get(f"{url}confirm/{token}")
    assert (page.status_code, done.status_code, forged.status_code) == (200, 200, 400)
    written = log.read_text()
    assert 'GET /unsubscribe/[token] HTTP/1.1" 200' in written
    assert 'POST /unsubscribe/[token] HTTP/1.1" 200' in written
    assert 'GET /confirm/[token] HTTP/1.1" 400' in written
    assert token not in written and token[:20] not in written
    assert "ana@example.org" not in written
