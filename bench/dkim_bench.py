"""DKIM signing: signed messages per second on one core, beside dkimpy and unsigned.

Called by bench/run.py (`python bench/run.py --only dkim [--quick]`). Every figure comes
from the same run, the same ~40 KB message (one entry of 700 words, the EU emblem) and
the same 2048-bit key, so the ratios, not the absolute rates, are the point:

- bulletin: CompiledEmail.personalise with the DkimSigner, as delivery calls it;
- dkimpy: personalise unsigned, then dkimpy signs it (relaxed/relaxed, same headers);
- unsigned: CompiledEmail.personalise without a signer;
- whole message: personalise unsigned, then DkimSigner.sign canonicalises the whole
  message, which is what the compiled pieces save;
- RSA alone: OpenSSL's RSA-2048 PKCS#1 v1.5 signature of a 1 KB header block, the
  ceiling for any rsa-sha256 signer on this core.
"""

from __future__ import annotations

import base64
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sites

WORDS = 700  # one entry of ~700 words renders to a ~40 KB email
DOMAIN, SELECTOR = "example.org", "news2026"
Row = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Sizes:
    rounds: int
    block: int  # messages per round: bulletin signed and unsigned, whole message, RSA alone
    dkimpy: int  # messages per round for dkimpy


SIZES = {"quick": Sizes(5, 40, 4), "full": Sizes(30, 100, 5)}


def rates(runs: list[tuple[Callable[[int], object], int]], rounds: int) -> list[float]:
    """For each (fn, block): the median over `rounds` of calls per second of a block of
    calls, fn(i) with i counting on from round to round.

    The functions take turns in every round, a second or so each, so that a burst of load
    from elsewhere on the machine hits every figure alike."""
    rates: list[list[float]] = [[] for _ in runs]
    for round_ in range(rounds):
        for (fn, block), measured in zip(runs, rates, strict=True):
            start = time.perf_counter()
            for i in range(round_ * block, (round_ + 1) * block):
                fn(i)
            measured.append(block / (time.perf_counter() - start))
    return [statistics.median(measured) for measured in rates]


def dkim(quick: bool) -> list[Row]:
    import dkim as dkimpy
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from bulletin.config import load_config
    from bulletin.content.entries import load_entries
    from bulletin.mail.compiled import CompiledEmail
    from bulletin.mail.dkim import DkimSigner
    from bulletin.render.renderer import Renderer

    sizes = SIZES["quick" if quick else "full"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = DkimSigner(key, DOMAIN, SELECTOR)
    with tempfile.TemporaryDirectory(prefix="bulletin-bench-") as tmp:
        site = sites.make_site(Path(tmp) / "site", 1, words=WORDS)
        config = load_config(site)
        rendered = Renderer(config).email(load_entries(config).entries, "2026-01-01-1", "News")

        def compile_email(signer: DkimSigner | None) -> CompiledEmail:
            news = config.lists["news"]
            return CompiledEmail(config, rendered, "2026-01-01-1", "news", news, dkim=signer)

        plain, signed = compile_email(None), compile_email(signer)

    now = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)
    people = [
        (f"reader{i}@example.org", f"tok-{i:08d}-{'x' * 40}", f"Reader {i}")
        for i in range(sizes.rounds * sizes.block)
    ]

    def unsigned(i: int) -> bytes:
        return plain.personalise(*people[i][:2], now, people[i][2]).data

    def bulletin(i: int) -> bytes:
        return signed.personalise(*people[i][:2], now, people[i][2]).data

    def whole(i: int) -> bytes:
        return signer.sign(unsigned(i))

    def with_dkimpy(i: int) -> bytes:
        data = unsigned(i)
        header = dkimpy.sign(
            data, SELECTOR.encode(), DOMAIN.encode(), pem,
            canonicalize=(b"relaxed", b"relaxed"), include_headers=list(signer.headers),
        )  # fmt: skip
        return header + data

    head = unsigned(0)[:1024]

    def rsa_alone(i: int) -> bytes:
        return key.sign(head + b"%d" % i, padding.PKCS1v15(), hashes.SHA256())

    _check(dkimpy, key, [bulletin(7), whole(7), with_dkimpy(7)])
    size = f"{len(unsigned(0)) / 1000:.0f} KB"
    n, m, r = sizes.block, sizes.dkimpy, sizes.rounds
    ours, theirs, plain_rate, whole_rate, rsa_rate = rates(
        [(bulletin, n), (with_dkimpy, m), (unsigned, n), (whole, n), (rsa_alone, n)], r
    )
    n, m = n * r, m * r
    assert signed._dkim_template.body.slow_messages == 0, "signed whole messages, not pieces"

    def msgs(value: float) -> str:
        return f"{value:,.0f} msgs/s"

    label = f"DKIM-signed personalise, {size}, {n:,} ({r} rounds)"
    return [
        (label, msgs(ours), f"dkimpy sign, {m:,} msgs", msgs(theirs), f"{ours / theirs:.1f}x rate"),
        ("", "", f"unsigned personalise, {n:,}", msgs(plain_rate),
         f"{ours / plain_rate:.2f}x rate"),
        ("", "", f"DkimSigner.sign whole msg, {n:,}", msgs(whole_rate),
         f"{ours / whole_rate:.2f}x rate"),
        ("", "", f"RSA-2048 sign alone, {n:,}", f"{rsa_rate:,.0f} signs/s",
         f"{ours / rsa_rate:.2f}x rate"),
    ]  # fmt: skip


def _check(dkimpy, key, messages: list[bytes]) -> None:
    """Every signer's message verifies, with dkimpy, against the key's DNS record."""
    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    name = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()

    def dnsfunc(query: bytes, timeout: int = 5) -> bytes | None:
        return record if query == name else None

    for data in messages:
        assert dkimpy.verify(data, dnsfunc=dnsfunc), "a signed message does not verify"
