"""DKIM signing: personalised messages verify, cover both unsubscribe headers, break if tampered.

Verification runs against a TXT record served by a local `dnsfunc`; no network is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import re
from collections.abc import Callable
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dkim.util import parse_tag_value

from bulletin.config import load_config
from bulletin.dkim import DkimSigner
from bulletin.entries import load_entries
from bulletin.errors import ConfigError
from bulletin.messages import CompiledEmail
from bulletin.render import Renderer

DOMAIN, SELECTOR = "example.org", "news2019"
KEY_ENV = "BULLETIN_TEST_DKIM_KEY"
WHEN = dt.datetime(2019, 11, 20, 9, 0, tzinfo=dt.UTC)
TOKEN = "tok-ABCdef0123456789"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey, encryption=None) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def _secret_lines(key: rsa.RSAPrivateKey) -> list[str]:
    """The base64 lines of the private key: none may appear in any message."""
    return [line for line in _pem(key).decode().splitlines() if not line.startswith("-----")]


def _dnsfunc(key: rsa.RSAPrivateKey) -> Callable[..., bytes | None]:
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    name = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
    return lambda query, timeout=5: record if query == name else None


def _configure(site: Path, lines: str) -> None:
    path = site / "bulletin.toml"
    path.write_text(path.read_text() + f"\n[delivery.dkim]\n{lines}\n")


def _personalise(site: Path, signer: DkimSigner | None) -> bytes:
    config = load_config(site)
    entries = load_entries(config).entries
    rendered = Renderer(config).email(entries, "2019-11-20-1", config.lists["news"].name)
    compiled = CompiledEmail(
        config, rendered, "2019-11-20-1", "news", config.lists["news"], dkim=signer
    )
    return compiled.personalise("ana@example.org", TOKEN, WHEN, "Ana Popescu").data


def _tags(data: bytes) -> dict[bytes, bytes]:
    message = email.message_from_bytes(data, policy=email.policy.compat32)
    return parse_tag_value(re.sub(r"\s+", "", message["DKIM-Signature"]).encode())


def _key_from_env(site, key, monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, _pem(key).decode())
    return f'private_key_env = "{KEY_ENV}"'


def _key_from_env_with_escaped_newlines(site, key, monkeypatch) -> str:
    monkeypatch.setenv(KEY_ENV, _pem(key).decode().replace("\n", "\\n"))
    return f'private_key_env = "{KEY_ENV}"'


def _key_from_file(site, key, monkeypatch) -> str:
    (site / "keys").mkdir()
    (site / "keys" / "dkim.pem").write_bytes(_pem(key).replace(b"\n", b"\r\n"))
    return 'private_key_file = "keys/dkim.pem"'


@pytest.fixture
def signed(site, key, monkeypatch) -> tuple[bytes, bytes, DkimSigner]:
    """Unsigned and signed personalisations of one message, and the signer (key from env)."""
    _configure(site, f'domain = "{DOMAIN}"\nselector = "{SELECTOR}"\n' + _key_from_env(
        site, key, monkeypatch
    ))  # fmt: skip
    signer = DkimSigner.for_config(load_config(site))
    assert signer is not None
    return _personalise(site, None), _personalise(site, signer), signer


@pytest.mark.parametrize(
    "source", [_key_from_env, _key_from_env_with_escaped_newlines, _key_from_file]
)
def test_signed_message_verifies_with_key_from_env_or_file(site, key, monkeypatch, source):
    _configure(site, f'domain = "{DOMAIN}"\nselector = "{SELECTOR}"\n' + source(
        site, key, monkeypatch
    ))  # fmt: skip
    signer = DkimSigner.for_config(load_config(site))
    data = _personalise(site, signer)
    assert dkim.verify(data, dnsfunc=_dnsfunc(key))


def test_signature_covers_unsubscribe_headers_and_only_prepends(signed, key):
    unsigned, data, _ = signed
    assert data.startswith(b"DKIM-Signature: ") and data.endswith(unsigned)
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF throughout, as over SMTP
    tags = _tags(data)
    assert (tags[b"a"], tags[b"c"], tags[b"d"], tags[b"s"]) == (
        b"rsa-sha256", b"relaxed/relaxed", DOMAIN.encode(), SELECTOR.encode()
    )  # fmt: skip
    signed_headers = tags[b"h"].split(b":")
    for name in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                 b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version",
                 b"content-type"):  # fmt: skip
        assert name in signed_headers, name
    # Listed once more than they occur, so that a second one added in transit is caught.
    assert signed_headers.count(b"list-unsubscribe") == 2
    assert signed_headers.count(b"list-unsubscribe-post") == 2
    assert dkim.verify(data, dnsfunc=_dnsfunc(key))


def test_signed_message_parses_as_before(signed):
    unsigned, data, _ = signed
    message = email.message_from_bytes(data, policy=email.policy.default)
    before = email.message_from_bytes(unsigned, policy=email.policy.default)
    assert message["DKIM-Signature"]
    assert str(message["To"]) == "Ana Popescu <ana@example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert TOKEN in str(message["List-Unsubscribe"])
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content()
    assert html == before.get_body(("html",)).get_content()
    assert f"https://news.example.org/unsubscribe/{TOKEN}" in html


def _add_list_unsubscribe(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    return head + b"\r\nList-Unsubscribe: <https://evil.example/u>\r\n\r\n" + body


@pytest.mark.parametrize(
    ("change", "verifies"),
    [
        pytest.param(lambda d: d.replace(TOKEN.encode(), b"tok-evil", 1), False,
                     id="list-unsubscribe-url"),
        pytest.param(lambda d: d.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                         b"List-Unsubscribe-Post: List-Unsubscribe=Nope"), False,
                     id="list-unsubscribe-post"),
        pytest.param(_add_list_unsubscribe, False, id="second-list-unsubscribe"),
        pytest.param(lambda d: d.replace(b"Workshop", b"Worksh0p"), False, id="body"),
        pytest.param(lambda d: d.replace(b"\r\nList-Id: ", b"\r\nList-Id:   "), True,
                     id="header-whitespace-relaxed"),
    ],
)  # fmt: skip
def test_tampering_fails_verification(signed, key, change, verifies):
    _, data, _ = signed
    changed = change(data)
    assert changed != data
    assert dkim.verify(changed, dnsfunc=_dnsfunc(key)) is verifies


def test_headers_setting_overrides_the_signed_list(site, key, monkeypatch):
    _configure(site, f'domain = "{DOMAIN}"\nselector = "{SELECTOR}"\n'
               'headers = ["From", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"]\n'
               + _key_from_env(site, key, monkeypatch))  # fmt: skip
    data = _personalise(site, DkimSigner.for_config(load_config(site)))
    assert _tags(data)[b"h"].split(b":") == [
        b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post",
        b"from", b"list-unsubscribe", b"list-unsubscribe-post",
    ]  # fmt: skip
    assert dkim.verify(data, dnsfunc=_dnsfunc(key))


def _write(path: str, text: bytes) -> Callable[[Path], None]:
    def write(site: Path) -> None:
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(text)

    return write


BASE = f'domain = "{DOMAIN}"\nselector = "{SELECTOR}"\n'
ENV, FILE = f'private_key_env = "{KEY_ENV}"\n', 'private_key_file = "keys/dkim.pem"\n'
GARBAGE = b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("lines", "env", "write", "code", "advice"),
    [
        pytest.param(BASE + ENV, None, None, "dkim-key", f"{KEY_ENV} is not set", id="env-unset"),
        pytest.param(BASE + FILE, "key", None, "dkim-key", "'keys/dkim.pem' not found",
                     id="file-missing"),
        pytest.param(BASE + FILE, None, _write("keys/dkim.pem/x", b""), "dkim-key",
                     "cannot be read", id="file-is-a-folder"),
        pytest.param(BASE + FILE, None, _write("keys/dkim.pem", GARBAGE), "dkim-key",
                     "not a readable RSA private key", id="file-garbage"),
        pytest.param(BASE + ENV + FILE, "key", None, "dkim-key-source", "exactly one of",
                     id="both"),
        pytest.param(BASE, "key", None, "dkim-key-source", "exactly one of", id="neither"),
        pytest.param(BASE + ENV, "public", None, "dkim-key", "public key belongs in DNS",
                     id="public-key"),
        pytest.param(BASE + ENV, "encrypted", None, "dkim-key", "encrypted key", id="encrypted"),
        pytest.param(BASE + ENV + 'headers = ["From", "List-Unsubscribe"]', "key", None,
                     "config-invalid", "must include list-unsubscribe-post", id="headers"),
        pytest.param('domain = "example org"\nselector = "s"\n' + ENV, "key", None,
                     "config-invalid", "not a DNS name", id="domain"),
    ],
)  # fmt: skip
def test_config_rejects_bad_dkim_settings_without_showing_the_key(
    site, key, monkeypatch, lines, env, write, code, advice
):
    values = {
        None: None,
        "key": _pem(key).decode(),
        "encrypted": _pem(key, serialization.BestAvailableEncryption(b"pw")).decode(),
        "public": key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
    }  # fmt: skip
    if values[env] is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, values[env])
    if write:
        write(site)
    _configure(site, lines)
    with pytest.raises(ConfigError) as caught:
        load_config(site)
    [problem] = caught.value.problems
    assert (problem.code, problem.path) == (code, "bulletin.toml")
    assert advice in problem.message
    assert problem.line and problem.line > 30  # in the [delivery.dkim] table at the end
    shown = f"{caught.value} {problem} {caught.value.__cause__!r}"
    assert not any(line in shown for line in _secret_lines(key))


def test_signer_repr_and_errors_do_not_show_the_key(signed, key):
    _, _, signer = signed
    assert repr(signer) == f"DkimSigner(domain={DOMAIN!r}, selector={SELECTOR!r})"
    assert not any(line in repr(signer) for line in _secret_lines(key))


def test_unsigned_site_has_no_signer(site):
    assert DkimSigner.for_config(load_config(site)) is None
