"""DKIM signing: personalised messages verify, cover both unsubscribe headers, break if tampered.

Verification runs against a TXT record served by a local `dnsfunc`; no network is used.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import parse_tag_value

import bulletin.mail.dkim
from bulletin.config import load_config
from bulletin.content.entries import load_entries
from bulletin.errors import ConfigError
from bulletin.mail.compiled import CompiledEmail
from bulletin.mail.dkim import DkimBody, DkimSigner
from bulletin.mail.message import wire_form
from bulletin.render.renderer import Renderer

DOMAIN, SELECTOR = "example.org", "news2019"
KEY_ENV = "BULLETIN_TEST_DKIM_KEY"
WHEN = dt.datetime(2019, 11, 20, 9, 0, tzinfo=dt.UTC)
TOKEN = "tok-ABCdef0123456789"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, encryption=None) -> bytes:
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


def _compile(site: Path, signer: DkimSigner | None) -> CompiledEmail:
    config = load_config(site)
    entries = load_entries(config).entries
    rendered = Renderer(config).email(entries, "2019-11-20-1", config.lists["news"].name)
    return CompiledEmail(
        config, rendered, "2019-11-20-1", "news", config.lists["news"], dkim=signer
    )


def _personalise(site: Path, signer: DkimSigner | None) -> bytes:
    compiled = _compile(site, signer)
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


def _key_from_file_in_traditional_format(site, key, monkeypatch) -> str:
    """-----BEGIN RSA PRIVATE KEY-----, as older `openssl genrsa` writes it."""
    (site / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))  # fmt: skip
    return 'private_key_file = "dkim.pem"'


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
    "source",
    [
        _key_from_env,
        _key_from_env_with_escaped_newlines,
        _key_from_file,
        _key_from_file_in_traditional_format,
    ],
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
        pytest.param(BASE + ENV, "ec", None, "dkim-key", "not a readable RSA private key",
                     id="not-rsa"),
        pytest.param(BASE + ENV + 'headers = ["From", "Received", "List-Unsubscribe", '
                     '"List-Unsubscribe-Post"]', "key", None, "config-invalid",
                     "Received must not be signed", id="unsignable-header"),
    ],
)  # fmt: skip
def test_config_rejects_bad_dkim_settings_without_showing_the_key(
    site, key, monkeypatch, lines, env, write, code, advice
):
    values = {
        None: None,
        "key": _pem(key).decode(),
        "encrypted": _pem(key, serialization.BestAvailableEncryption(b"pw")).decode(),
        "ec": _pem(ec.generate_private_key(ec.SECP256R1())).decode(),
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


# --- Our signer against dkimpy's: same input, same time, same signature ---------------------

FROZEN = 1574240400  # 2019-11-20 09:00 UTC


@pytest.fixture
def frozen_clock(monkeypatch) -> None:
    """Both signers read t= from a clock that stands still."""
    clock = SimpleNamespace(time=lambda: float(FROZEN))
    monkeypatch.setattr(dkim, "time", clock)
    monkeypatch.setattr(bulletin.mail.dkim, "time", clock)


def _dkimpy_header(data: bytes, key: rsa.RSAPrivateKey, signer: DkimSigner) -> bytes:
    return dkim.sign(
        data, SELECTOR.encode(), DOMAIN.encode(), _pem(key),
        canonicalize=(b"relaxed", b"relaxed"), include_headers=list(signer.headers),
    )  # fmt: skip


def test_personalised_signature_is_the_one_dkimpy_makes(frozen_clock, signed, key):
    unsigned, data, signer = signed
    theirs = _tags(_dkimpy_header(unsigned, key, signer) + unsigned)
    # RSA PKCS#1 v1.5 is deterministic: equal b= means equal canonical headers and body.
    assert _tags(data) == theirs
    assert theirs[b"t"] == str(FROZEN).encode()


MESSAGES = {
    "whitespace": b"From: Ana <ana@example.org>\r\nSubject:  spaced \t out  \r\nTo:b@example.org"
    b"\r\n\r\nbody  \r\nline\twith\t tabs \t\r\n   \r\nend\r\n\r\n\r\n",
    "folded": b"From: ana@example.org\r\nSubject: a long\r\n\tfolded  subject\r\n"
    b"List-Unsubscribe: <https://example.org/u>,\r\n <mailto:u@example.org>\r\n\r\nx\r\n",
    "repeated": b"FROM: ana@example.org\r\nlist-UNSUBSCRIBE: <https://a.example/1>\r\n"
    b"To: b@example.org\r\nList-Unsubscribe: <https://a.example/2>\r\n\r\nbody\r\n",
    "empty-body": b"From: ana@example.org\r\nTo: b@example.org\r\n\r\n",
    "blank-lines-only": b"From: ana@example.org\r\n\r\n\r\n \r\n\t\r\n",
    "no-final-crlf": b"From: ana@example.org\r\n\r\nlast line  ",
}


@pytest.mark.parametrize("data", MESSAGES.values(), ids=MESSAGES.keys())
def test_signing_any_message_matches_dkimpy(frozen_clock, key, data):
    signer = DkimSigner(key, DOMAIN, SELECTOR)
    ours = signer.sign(data)
    assert ours.endswith(data)
    assert _tags(ours) == _tags(_dkimpy_header(data, key, signer) + data)
    assert dkim.verify(ours, dnsfunc=_dnsfunc(key))


def test_signature_header_lines_stay_short(signed):
    _, data, _ = signed
    header = data[: data.index(b"\r\nTo: ")]
    assert all(len(line) <= 78 for line in header.split(b"\r\n"))


def test_signed_wire_form_is_the_signed_message_dot_stuffed(site, key, monkeypatch):
    _configure(site, BASE + _key_from_env(site, key, monkeypatch))
    compiled = _compile(site, DkimSigner.for_config(load_config(site)))
    message = compiled.personalise("ana@example.org", TOKEN, WHEN, "Ana Popescu")
    assert message.data.startswith(b"DKIM-Signature: ") and b"\r\n." in message.data
    assert message.wire == wire_form(message.data)


def test_personalised_messages_rehash_only_their_links(site, key, monkeypatch):
    """The edition's constant body is canonicalised once; a message that needed its whole
    body canonicalised again would show in slow_messages."""
    _configure(site, BASE + _key_from_env(site, key, monkeypatch))
    compiled = _compile(site, DkimSigner.for_config(load_config(site)))
    people = [("ana@example.org", "tok-a b", "Ana"), ("ivan@example.org", "t\tk  2", "")]
    for address, token, name in people:
        data = compiled.personalise(address, token, WHEN, name).data
        assert dkim.verify(data, dnsfunc=_dnsfunc(key))
    assert compiled._dkim_template.body.slow_messages == 0


_CHUNKS = [b"a", b"b=", b" ", b"\t", b"  ", b"\r\n", b"\r", b"\n", b""]


def _chunk(rng: random.Random) -> bytes:
    return b"".join(rng.choice(_CHUNKS) for _ in range(rng.randint(0, 6)))


def test_body_hashed_piece_by_piece_equals_dkimpys_canonical_body():
    rng = random.Random(6376)
    relaxed = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    piecewise = 0
    for _ in range(4000):
        pieces = [_chunk(rng) for _ in range(rng.randint(1, 4))]
        fills = [_chunk(rng) for _ in pieces[1:]]
        body = DkimBody(pieces)
        joined = b"".join(p + f for p, f in zip(pieces, [*fills, b""], strict=True))
        expected = hashlib.sha256(relaxed.canonicalize_body(joined)).digest()
        assert body.hash(fills) == expected, (pieces, fills)
        piecewise += body.slow_messages == 0
    # Both ways were taken: piece by piece, and whole when a join was not clean.
    assert 1000 < piecewise < 3000
